# syntax=docker/dockerfile:1
# Build stage: dev dependencies and the TypeScript compiler, discarded afterwards.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts run (argon2's checks its prebuilt binary and builds from source where that
# does not load), except mongodb-memory-server's, which would download a mongod test binary
# into node_modules/.cache. argon2 must load and hash here, or the image is not built.
RUN MONGOMS_DISABLE_POSTINSTALL=1 npm ci --no-audit --no-fund \
 && node -e "require('argon2').hash('smoke test').then(() => process.exit(0), () => process.exit(1))"
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
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
