/**
 * Wiring: config → stores → key ring → services → Koa app. Nothing here reads
 * `process.env`, listens or exits: `main.ts` does, and tests build exactly `createService`.
 */
import { join } from 'node:path';
import { systemClock, type Clock } from './clock.js';
import { createAdminService } from './admin/service.js';
import { cacheClients } from './clients/cache.js';
import type { Config, RateBudget } from './config.js';
import { DEV_SCOPES, seedDevData, type SeedResult } from './dev/seed.js';
import { createApp } from './http/app.js';
import { KeyRingError } from './keys/errors.js';
import { ensureRefreshSecret, readRefreshSecret, REFRESH_SECRET_FILE } from './keys/refresh-secret.js';
import { createKeyRingSource, type KeyRingSource } from './keys/source.js';
import type { Logger } from './log.js';
import { createClientAuthenticator } from './oauth/client-auth.js';
import { GRANT_TYPES } from './oauth/grants/index.js';
import { createTokenService, type TokenService } from './oauth/token-service.js';
import { cryptoRandom, type Random } from './random.js';
import { createSessionService, type SessionService } from './sessions/service.js';
import { createMemoryClientStore } from './stores/memory/clients.js';
import { createMemoryConsentStore } from './stores/memory/consents.js';
import { createMemoryDenylist } from './stores/memory/denylist.js';
import { createMemoryFamilyStore } from './stores/memory/families.js';
import { createMemoryRateLimits } from './stores/memory/rate-limits.js';
import { createMemoryUserStore } from './stores/memory/users.js';
import { createMongoConnection, createMongoStores } from './stores/mongo/connection.js';
import { closeRedis, connectRedis, createRedisClient, pingRedis } from './stores/redis/connection.js';
import { createRedisDenylist } from './stores/redis/denylist.js';
import { createRedisFamilyStore } from './stores/redis/families.js';
import { createRedisRateLimits } from './stores/redis/rate-limits.js';
import type {
  AccessTokenDenylist,
  AuthorizationCodeStore,
  BrowserSessionStore,
  ClientStore,
  ConsentStore,
  FamilyStore,
  PushedRequestStore,
  RateLimitBackend,
  UserStore,
} from './stores/types.js';
import { createMemoryAuthorizationCodeStore } from './stores/memory/authorization-codes.js';
import { createMemoryBrowserSessionStore } from './stores/memory/browser-sessions.js';
import { createMemoryPushedRequestStore } from './stores/memory/pushed-requests.js';
import { createRedisAuthorizationCodeStore } from './stores/redis/authorization-codes.js';
import { createRedisBrowserSessionStore } from './stores/redis/browser-sessions.js';
import { createRedisPushedRequestStore } from './stores/redis/pushed-requests.js';
import { createAuthorizationChecks } from './oauth/authorization.js';
import { createAuthorizationCodes } from './oauth/authorization-codes.js';
import { createSignIn } from './oauth/sign-in.js';
import { createPageRenderer, pageStylesheet, PAGES_LOGO_PATH, type PageAssets } from './pages/index.js';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { hkdfSync } from 'node:crypto';
import { createAccessTokens } from './tokens/access-token.js';
import { createRefreshTokens } from './tokens/refresh-token.js';
import { createLoginThrottle } from './users/login-throttle.js';
import { createPasswordHasher } from './users/passwords.js';
import { createUserService, type UserService } from './users/service.js';

export interface Stores {
  readonly users: UserStore;
  readonly clients: ClientStore;
  readonly consents: ConsentStore;
  readonly authorizationCodes: AuthorizationCodeStore;
  readonly pushedRequests: PushedRequestStore;
  readonly browserSessions: BrowserSessionStore;
  readonly families: FamilyStore;
  readonly denylist: AccessTokenDenylist;
  readonly rateLimits: RateLimitBackend;
  readonly readiness: { name: string; check(): Promise<unknown> }[];
  /** Names of the stores running in-process (dev mode). */
  readonly embedded: string[];
  close(): Promise<void>;
}

/**
 * REFRESH_TOKEN_SECRET, else the secret file in KEYS_DIR (see keys/refresh-secret.ts):
 * created when missing outside production, required in production, where an instance that
 * made its own would refuse every other instance's refresh tokens.
 */
async function refreshTokenSecret(config: Config, logger: Logger, random: Random): Promise<string> {
  if (config.refreshTokenSecret) return config.refreshTokenSecret;
  const file = join(config.keysDir, REFRESH_SECRET_FILE);
  if (config.production) {
    const secret = await readRefreshSecret(config.keysDir, { production: true });
    if (secret === undefined) {
      throw new KeyRingError(
        `REFRESH_TOKEN_SECRET is unset and KEYS_DIR holds no ${REFRESH_SECRET_FILE}: run \`npm run keys:rotate\` (it creates one) or set REFRESH_TOKEN_SECRET`,
        file,
      );
    }
    return secret;
  }
  try {
    const { secret, created } = await ensureRefreshSecret(config.keysDir, { production: false });
    if (created) logger.info({ file }, 'refresh tokens: created a MAC key in KEYS_DIR (REFRESH_TOKEN_SECRET is unset)');
    return secret;
  } catch (err) {
    // A read-only KEYS_DIR, or a file system without hard links: dev mode still starts.
    if (!(err instanceof KeyRingError)) throw err;
    logger.warn({ reason: err.message }, 'refresh tokens: no MAC key in KEYS_DIR and none could be made; using a random one that dies with this process');
    return random.token(32);
  }
}

/** Builds the stores the config asks for: real ones when a URL is set, embedded ones otherwise (dev only). */
export async function createStores(config: Config, { clock, random, logger }: { clock: Clock; random: Random; logger: Logger }): Promise<Stores> {
  const closers: (() => Promise<void>)[] = [];
  const readiness: Stores['readiness'] = [];
  const embedded: string[] = [];
  const familyOptions = {
    clock,
    refreshTokenTtl: config.refreshTokenTtl,
    familyMaxTtl: config.refreshFamilyMaxTtl,
    reuseGrace: config.refreshReuseGrace,
    revokedMarkerTtl: config.accessTokenTtl + config.clockSkew,
    maxFamiliesPerSubject: config.refreshFamiliesPerUser,
  };

  let users: UserStore;
  let clients: ClientStore;
  let consents: ConsentStore;
  if (config.mongodbUri) {
    const connection = createMongoConnection(config.mongodbUri, { clock, grantTypes: GRANT_TYPES });
    await connection.init();
    ({ users, clients, consents } = createMongoStores(connection));
    readiness.push({ name: 'mongodb', check: () => connection.ping() });
    closers.push(() => connection.close());
  } else {
    users = createMemoryUserStore({ clock });
    clients = createMemoryClientStore({ clock });
    consents = createMemoryConsentStore({ clock });
    embedded.push('users', 'clients', 'consents');
  }

  const sessionOptions = { random, idleMs: config.signIn.sessionTtl * 1000, maxMs: config.signIn.sessionMaxTtl * 1000 };
  let authorizationCodes: AuthorizationCodeStore;
  let pushedRequests: PushedRequestStore;
  let browserSessions: BrowserSessionStore;
  let families: FamilyStore;
  let denylist: AccessTokenDenylist;
  let rateLimits: RateLimitBackend;
  if (config.redisUrl || config.redisClusterNodes) {
    const redis = createRedisClient({ url: config.redisUrl, clusterNodes: config.redisClusterNodes });
    redis.on('error', (err: Error) => logger.warn({ err: { message: err.message } }, 'redis connection problem'));
    await connectRedis(redis).catch((err: unknown) => logger.error({ err }, 'redis unreachable at start-up; retrying in the background'));
    families = createRedisFamilyStore({ ...familyOptions, redis });
    authorizationCodes = createRedisAuthorizationCodeStore({ redis });
    pushedRequests = createRedisPushedRequestStore({ redis });
    browserSessions = createRedisBrowserSessionStore({ ...sessionOptions, redis });
    denylist = createRedisDenylist({ redis, clock });
    rateLimits = createRedisRateLimits(redis);
    readiness.push({ name: 'redis', check: () => pingRedis(redis) });
    closers.push(() => closeRedis(redis));
  } else {
    families = createMemoryFamilyStore(familyOptions);
    authorizationCodes = createMemoryAuthorizationCodeStore({ clock });
    pushedRequests = createMemoryPushedRequestStore({ clock });
    browserSessions = createMemoryBrowserSessionStore({ ...sessionOptions, clock });
    denylist = createMemoryDenylist({ clock });
    rateLimits = createMemoryRateLimits();
    embedded.push('refresh-token families', 'access-token denylist', 'rate limits', 'sign-in sessions and codes');
  }

  return {
    users,
    clients,
    consents,
    authorizationCodes,
    pushedRequests,
    browserSessions,
    families,
    denylist,
    rateLimits,
    readiness,
    embedded,
    async close() {
      await Promise.allSettled(closers.map((close) => close()));
    },
  };
}

const toLimit = ({ points, durationSec }: RateBudget) => ({ points, durationSec });

export interface Service {
  readonly app: ReturnType<typeof createApp>;
  readonly stores: Stores;
  readonly keys: KeyRingSource;
  readonly tokens: TokenService;
  readonly users: UserService;
  readonly sessions: SessionService;
  /** Dev mode: what was seeded (secrets only when created now). */
  readonly seeded: SeedResult | undefined;
  close(): Promise<void>;
}

/** Stores, then services, then the Koa app; nothing listens yet. Tests build exactly this. */
export async function createService(
  config: Config,
  { logger, clock = systemClock, random = cryptoRandom }: { logger: Logger; clock?: Clock; random?: Random },
): Promise<Service> {
  // Read before anything connects: in production a missing key or an unreadable file stops start-up here.
  const refreshSecret = await refreshTokenSecret(config, logger, random);
  const assets = await readPageAssets(config);
  const stores = await createStores(config, { clock, random, logger });
  const keys = createKeyRingSource({ dir: config.keysDir, production: config.production, clock, logger });
  try {
    await keys.start();
  } catch (err) {
    await stores.close();
    throw err;
  }
  const hasher = await createPasswordHasher(config.argon2);
  const seeded = config.production
    ? undefined
    : await seedDevData({
        users: stores.users,
        clients: stores.clients,
        hasher,
        random,
        clientSecret: config.devClientSecret,
        userPassword: config.devUserPassword,
      });

  const clients = config.clientCacheTtl > 0 ? cacheClients(stores.clients, { ttlMs: config.clientCacheTtl * 1000, clock }) : stores.clients;
  const accessTokens = createAccessTokens({ keys, clock, random, issuer: config.issuer, ttl: config.accessTokenTtl, clockSkew: config.clockSkew });
  const throttle = createLoginThrottle(stores.rateLimits, {
    accountIp: config.loginRateLimit,
    ip: config.loginIpRateLimit,
    account: config.loginAccountRateLimit,
  });
  const users = createUserService({
    users: stores.users,
    hasher,
    throttle,
    clock,
    takenEmails: stores.rateLimits.limiter({ keyPrefix: 'register-taken', ...toLimit(config.registerRateLimit) }),
    registrations: stores.rateLimits.limiter({ keyPrefix: 'register-ip', ...toLimit(config.registerIpRateLimit) }),
  });
  const refreshTokens = createRefreshTokens({ secret: refreshSecret, random, families: stores.families });
  const tokens = createTokenService({
    accessTokens,
    families: stores.families,
    refreshTokens,
    denylist: stores.denylist,
    users: stores.users,
    clients,
    audience: config.audience,
    refreshTokenTtl: config.refreshTokenTtl,
    clockSkew: config.clockSkew,
  });
  const clientAuth = createClientAuthenticator({
    clients,
    failures: stores.rateLimits.limiter({ keyPrefix: 'client-auth', ...toLimit(config.clientAuthRateLimit) }),
    clock,
  });

  const sessions = createSessionService({
    tokens,
    users,
    families: stores.families,
    clients,
    browserSessions: stores.browserSessions,
    consents: stores.consents,
    loginClientId: config.loginClientId,
  });
  const codes = createAuthorizationCodes({ codes: stores.authorizationCodes, tokens, users: stores.users, random, clock });
  const signIn = createSignIn({
    issuer: config.issuer,
    checks: createAuthorizationChecks({ clients, audience: config.audience }),
    pushed: stores.pushedRequests,
    sessions: stores.browserSessions,
    consents: stores.consents,
    codes,
    users,
    // A key of its own for the sign-in forms' CSRF tokens, derived from the shared refresh-token secret.
    transactionKey: Buffer.from(hkdfSync('sha256', refreshSecret, '', 'token-authority sign-in transaction', 32)),
    requirePar: config.signIn.requirePar,
    clock,
    random,
  });
  const app = createApp({
    config,
    logger,
    clock,
    random,
    readiness: [...stores.readiness, { name: 'signing-key', check: () => keys.ready() }],
    keys,
    tokens,
    users,
    clientAuth,
    sessions,
    codes,
    signIn,
    pages: createPageRenderer({ productName: config.signIn.productName, logoUrl: assets.logo ? PAGES_LOGO_PATH : undefined }),
    pageAssets: assets,
    admin: createAdminService({ tokens, clients: stores.clients, users: stores.users, hasher, random, keysDir: config.keysDir }),
    scopes: config.scopesSupported.length > 0 || config.production ? config.scopesSupported : DEV_SCOPES,
  });
  return {
    app,
    stores,
    keys,
    tokens,
    users,
    sessions,
    seeded,
    async close() {
      await keys.stop();
      await stores.close();
    },
  };
}

const LOGO_TYPES: Record<string, string> = { '.svg': 'image/svg+xml', '.png': 'image/png', '.webp': 'image/webp' };

/** The pages' stylesheet (PAGES_STYLESHEET, else the default) and logo (PAGES_LOGO), read once at start-up. */
async function readPageAssets(config: Config): Promise<PageAssets> {
  const read = async (file: string, variable: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new Error(`${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
  };
  const { stylesheetFile, logoFile } = config.signIn;
  return {
    stylesheet: stylesheetFile ? (await read(stylesheetFile, 'PAGES_STYLESHEET')).toString('utf8') : pageStylesheet(),
    ...(logoFile && { logo: { body: await read(logoFile, 'PAGES_LOGO'), type: LOGO_TYPES[extname(logoFile).toLowerCase()]! } }),
  };
}
