# syntax=docker/dockerfile:1
# Build stage: dev dependencies and the TypeScript compiler, discarded afterwards.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The workspace's package.json too (packages/verifier: the resource-server kit), or npm ci refuses the lockfile.
COPY packages/verifier/package.json ./packages/verifier/
# npm ci runs `prepare` (scripts/build.mjs), which finds no sources yet and builds nothing.
COPY scripts/build.mjs ./scripts/
# Install scripts run: argon2's checks that its prebuilt binary loads (where it does not, it
# tries to build from source, which fails in this slim image: the build stops rather than
# ship a broken binary). mongodb-memory-server's would download a mongod test binary into
# node_modules/.cache, so it is switched off. argon2 must then load and hash here.
RUN MONGOMS_DISABLE_POSTINSTALL=1 npm ci --no-audit --no-fund \
 && node -e "require('argon2').hash('smoke test').then(() => process.exit(0), () => process.exit(1))"
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY packages ./packages
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev && rm -rf node_modules/.cache

# Runtime stage: production dependencies and compiled code only, as a non-root user.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    KEYS_DIR=/keys
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/start.cjs"]
