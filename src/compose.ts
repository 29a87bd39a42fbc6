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
import { markDevMade, refuseDevMade } from './keys/dev-made.js';
import { KeyRingError } from './keys/errors.js';
import { ensureRefreshSecret, readRefreshSecret, REFRESH_SECRET_FILE } from './keys/refresh-secret.js';
import { createKeyRingSource, type KeyRingSource } from './keys/source.js';
import type { Logger } from './log.js';
import { createClientAuthenticator } from './oauth/client-auth.js';
import { GRANT_TYPES } from './oauth/grants/index.js';
import { createTokenService, type TokenService } from './oauth/token-service.js';
import { withGrantEvents } from './events/authorization.js';
import { createSecurityEvents, type SecurityEvents } from './events/emitter.js';
import { createRequestScope } from './events/origin.js';
import { SECURITY_EVENTS_STREAM } from './events/types.js';
import { trackLoginLimits, withUserEvents } from './events/users.js';
import { createWebhookDelivery, type WebhookDelivery } from './events/webhooks.js';
import { createMemoryEventStream } from './stores/memory/event-stream.js';
import { createRedisEventStream } from './stores/redis/event-stream.js';
import { hostname } from 'node:os';
import { cryptoRandom, type Random } from './random.js';
import { createSessionService, type SessionService } from './sessions/service.js';
import { createMemoryClientStore } from './stores/memory/clients.js';
import { createMemoryConsentStore } from './stores/memory/consents.js';
import { createMemoryDenylist } from './stores/memory/denylist.js';
import { createMemoryFamilyStore } from './stores/memory/families.js';
import { createMemoryRateLimits } from './stores/memory/rate-limits.js';
import { createMemoryUserStore } from './stores/memory/users.js';
import { createMemoryMailQueue } from './stores/memory/mail-queue.js';
import { createRedisMailQueue } from './stores/redis/mail-queue.js';
import { createMailOutbox, type MailOutbox } from './mail/outbox.js';
import { createMailTemplates } from './mail/templates.js';
import { createDevTransport, createSmtpTransport, type DevMail, type MailTransport } from './mail/transport.js';
import { createMongoConnection, createMongoStores } from './stores/mongo/connection.js';
import { closeRedis, connectRedis, createRedisClient, pingRedis } from './stores/redis/connection.js';
import { createRedisDenylist } from './stores/redis/denylist.js';
import { createRedisFamilyStore } from './stores/redis/families.js';
import { createRedisRateLimits } from './stores/redis/rate-limits.js';
import { createRedisUserChangeFeed } from './stores/redis/user-changes.js';
import { createMemoryUserChangeFeed } from './stores/memory/user-changes.js';
import { createUserCache, publishUserChanges } from './users/cache.js';
import type {
  AccessTokenDenylist,
  AccountTokenStore,
  AuthorizationCodeStore,
  BrowserSessionStore,
  ClientStore,
  EventStreamStore,
  ConsentStore,
  FamilyStore,
  LogoutQueue,
  MailQueueStore,
  PushedRequestStore,
  RateLimitBackend,
  UserChangeFeed,
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
import { createLogout } from './oauth/logout.js';
import { createBackchannelLogout } from './oauth/backchannel-logout.js';
import { createMemoryLogoutQueue } from './stores/memory/logout-queue.js';
import { createRedisLogoutQueue } from './stores/redis/logout-queue.js';
import { createPageRenderer, pageStylesheet, PAGES_LOGO_PATH, type PageAssets } from './pages/index.js';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { hkdfSync } from 'node:crypto';
import { createAccessTokens } from './tokens/access-token.js';
import { createIdTokens } from './tokens/id-token.js';
import { createRefreshTokens } from './tokens/refresh-token.js';
import { createAttemptGuard } from './users/budgets.js';
import { createLoginThrottle } from './users/login-throttle.js';
import { createPasswordHasher } from './users/passwords.js';
import { createUserService, type UserService } from './users/service.js';
import { createAccountTokens } from './users/account-tokens.js';
import { createPasswordPolicy } from './users/password-policy.js';
import { createAccountRecovery, type AccountRecovery } from './users/recovery.js';
import { createMemoryAccountTokenStore } from './stores/memory/account-tokens.js';
import { createRedisAccountTokenStore } from './stores/redis/account-tokens.js';
import { ACCOUNT_PAGE_PATHS } from './http/routes/account-pages.js';
import { countFamilyRevocations, countUserActions, instrumentStores, sampleFamilies, sampleKeys, sampleStores, timeSigning } from './metrics/instrument.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';

/** A login's wait for its user lookup (the refresh path's is REFRESH_REUSE_GRACE / 2, at most 2 s). */
const LOGIN_LOOKUP_TIMEOUT_MS = 2_000;

export interface Stores {
  /** Every change a token would carry is published on `userChanges`. */
  readonly users: UserStore;
  readonly userChanges: UserChangeFeed;
  readonly clients: ClientStore;
  readonly consents: ConsentStore;
  readonly authorizationCodes: AuthorizationCodeStore;
  readonly pushedRequests: PushedRequestStore;
  readonly browserSessions: BrowserSessionStore;
  readonly logoutQueue: LogoutQueue;
  readonly families: FamilyStore;
  readonly denylist: AccessTokenDenylist;
  readonly rateLimits: RateLimitBackend;
  /** The security event stream (Redis Stream, or in memory in dev). */
  readonly events: EventStreamStore;
  readonly mailQueue: MailQueueStore;
  readonly accountTokens: AccountTokenStore;
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
    if (created) {
      await markDevMade(config.keysDir, REFRESH_SECRET_FILE);
      logger.info({ file }, 'refresh tokens: created a MAC key in KEYS_DIR (REFRESH_TOKEN_SECRET is unset)');
    }
    return secret;
  } catch (err) {
    // A read-only KEYS_DIR, or a file system without hard links: dev mode still starts.
    if (!(err instanceof KeyRingError)) throw err;
    logger.warn({ reason: err.message }, 'refresh tokens: no MAC key in KEYS_DIR and none could be made; using a random one that dies with this process');
    return random.token(32);
  }
}

/**
 * Issue 23 item 15: families live in the shared Redis, users in this process. Another
 * instance on the same Redis refreshes them, finds no such user and ends the session.
 */
export const SHARED_REDIS_WITH_EMBEDDED_USERS =
  'dev mode: users and clients are in this process (no MONGODB_URI) while refresh-token families are in a shared Redis: ' +
  'run ONE instance only. Another instance on the same Redis would not know these users and would end their sessions at ' +
  'their next refresh there. Set MONGODB_URI to run several.';

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
    // WORKERS > 1 is refused by the config; another instance sharing this Redis cannot be seen.
    if (config.redisUrl || config.redisClusterNodes) logger.warn(SHARED_REDIS_WITH_EMBEDDED_USERS);
  }

  const sessionOptions = { random, idleMs: config.signIn.sessionTtl * 1000, maxMs: config.signIn.sessionMaxTtl * 1000 };
  let authorizationCodes: AuthorizationCodeStore;
  let pushedRequests: PushedRequestStore;
  let browserSessions: BrowserSessionStore;
  let logoutQueue: LogoutQueue;
  let families: FamilyStore;
  let denylist: AccessTokenDenylist;
  let rateLimits: RateLimitBackend;
  let events: EventStreamStore;
  let mailQueue: MailQueueStore;
  let accountTokens: AccountTokenStore;
  let userChanges: UserChangeFeed;
  if (config.redisUrl || config.redisClusterNodes) {
    const redis = createRedisClient({ url: config.redisUrl, clusterNodes: config.redisClusterNodes });
    redis.on('error', (err: Error) => logger.warn({ err: { message: err.message } }, 'redis connection problem'));
    await connectRedis(redis).catch((err: unknown) => logger.error({ err }, 'redis unreachable at start-up; retrying in the background'));
    families = createRedisFamilyStore({ ...familyOptions, redis });
    authorizationCodes = createRedisAuthorizationCodeStore({ redis });
    pushedRequests = createRedisPushedRequestStore({ redis });
    browserSessions = createRedisBrowserSessionStore({ ...sessionOptions, redis });
    logoutQueue = createRedisLogoutQueue({ redis });
    denylist = createRedisDenylist({ redis, clock });
    rateLimits = createRedisRateLimits(redis);
    events = createRedisEventStream({ redis, key: SECURITY_EVENTS_STREAM, maxLen: config.events.streamMaxLen });
    mailQueue = createRedisMailQueue({ redis });
    accountTokens = createRedisAccountTokenStore({ redis });
    // Users in memory live in this process only: its own feed tells all there is to know.
    userChanges = embedded.includes('users') ? createMemoryUserChangeFeed() : createRedisUserChangeFeed(redis);
    readiness.push({ name: 'redis', check: () => pingRedis(redis) });
    closers.push(
      () => userChanges.close(),
      () => closeRedis(redis),
    );
  } else {
    families = createMemoryFamilyStore(familyOptions);
    authorizationCodes = createMemoryAuthorizationCodeStore({ clock });
    pushedRequests = createMemoryPushedRequestStore({ clock });
    browserSessions = createMemoryBrowserSessionStore({ ...sessionOptions, clock });
    logoutQueue = createMemoryLogoutQueue();
    denylist = createMemoryDenylist({ clock });
    rateLimits = createMemoryRateLimits();
    userChanges = createMemoryUserChangeFeed();
    events = createMemoryEventStream({ clock, maxLen: config.events.streamMaxLen });
    mailQueue = createMemoryMailQueue({ clock });
    accountTokens = createMemoryAccountTokenStore({ clock });
    embedded.push(
      'refresh-token families',
      'access-token denylist',
      'rate limits',
      'sign-in sessions and codes',
      'security event stream',
      'mail queue',
      'account tokens',
    );
  }

  return {
    users: publishUserChanges(users, userChanges),
    userChanges,
    clients,
    consents,
    authorizationCodes,
    pushedRequests,
    browserSessions,
    logoutQueue,
    families,
    denylist,
    rateLimits,
    events,
    mailQueue,
    accountTokens,
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
  /** Security events: emit, and flush (tests). */
  readonly events: SecurityEvents;
  /** Webhook delivery from the event stream, when WEBHOOK_URLS is set. */
  readonly webhooks: WebhookDelivery | undefined;
  readonly mail: MailOutbox;
  readonly recovery: AccountRecovery;
  /** The service's own Prometheus registry and instruments; undefined when METRICS_PORT is off. */
  readonly metrics: Metrics | undefined;
  /** Dev mode: what was seeded (secrets only when created now). */
  readonly seeded: SeedResult | undefined;
  close(): Promise<void>;
}

/** Stores, then services, then the Koa app; nothing listens yet. Tests build exactly this. */
export async function createService(
  config: Config,
  {
    logger,
    clock = systemClock,
    random = cryptoRandom,
    print = (text: string) => void process.stdout.write(text),
  }: { logger: Logger; clock?: Clock; random?: Random; /** Where dev mode prints mail (the terminal). */ print?: (text: string) => void },
): Promise<Service> {
  // Read before anything connects: in production a missing key or an unreadable file stops start-up here,
  // and so do keys and secrets a dev server made (unused ones aside: the secret when REFRESH_TOKEN_SECRET is set).
  if (config.production) await refuseDevMade(config.keysDir, { ignore: config.refreshTokenSecret ? [REFRESH_SECRET_FILE] : [] });
  const refreshSecret = await refreshTokenSecret(config, logger, random);
  const assets = await readPageAssets(config);
  const metrics = config.metrics.port === undefined ? undefined : createMetrics();
  const rawStores = await createStores(config, { clock, random, logger });
  const stores = metrics ? instrumentStores(rawStores, metrics) : rawStores;
  const keys = createKeyRingSource({ dir: config.keysDir, production: config.production, clock, logger, twinAlgs: config.idTokenSigningAlgs });
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
  const signer = createAccessTokens({ keys, clock, random, issuer: config.issuer, ttl: config.accessTokenTtl, clockSkew: config.clockSkew });
  const accessTokens = metrics ? timeSigning(signer, keys, metrics) : signer;
  const requestScope = createRequestScope();
  const securityEvents = config.events.enabled
    ? createSecurityEvents({ logger, clock, random, stream: stores.events, origin: requestScope.current })
    : NO_SECURITY_EVENTS;
  if (!config.events.enabled) logger.warn('SECURITY_EVENTS=off: no security events are recorded (no stream entries, no webhooks)');
  // Families ended are counted from the events that report them, one place for every reason.
  const events = metrics ? countFamilyRevocations(securityEvents, metrics) : securityEvents;
  const loginLimits = trackLoginLimits(stores.rateLimits);
  const throttle = createLoginThrottle(loginLimits.backend, {
    accountIp: config.loginRateLimit,
    ip: config.loginIpRateLimit,
    account: config.loginAccountRateLimit,
  });
  // Registrations and mail requests: spent before the work, given back by a 503.
  const budgets = createAttemptGuard(stores.rateLimits.attempts());
  const passwordPolicy = createPasswordPolicy({ hibpRangeUrl: config.hibpRangeUrl, logger });
  const userService = createUserService({
    users: stores.users,
    hasher,
    throttle,
    clock,
    budgets,
    takenEmails: config.registerRateLimit,
    registrations: config.registerIpRateLimit,
    requireVerifiedEmail: config.requireVerifiedEmail,
    refusePassword: passwordPolicy.refuse,
    // A stalled MongoDB answers a login 503 after this, not after the driver's retries.
    lookupTimeoutMs: LOGIN_LOOKUP_TIMEOUT_MS,
  });
  const users = withUserEvents(metrics ? countUserActions(userService, metrics) : userService, { events, limits: loginLimits });
  const idTokens = createIdTokens({ keys, clock, random, issuer: config.issuer, ttl: config.accessTokenTtl });
  const backchannel = createBackchannelLogout({ queue: stores.logoutQueue, clients, idTokens, clock, random, logger });
  backchannel.start();
  const userCache = createUserCache(stores.users, { feed: stores.userChanges, ttlMs: config.userCacheTtl * 1000, clock });
  const refreshTokens = createRefreshTokens({ secret: refreshSecret, random, families: stores.families });
  const tokens = createTokenService({
    accessTokens,
    families: stores.families,
    refreshTokens,
    denylist: stores.denylist,
    users: stores.users,
    userCache,
    // Within the grace window, so that the client's retry after this 503 gets the successor.
    refreshUserTimeoutMs: Math.min(2000, Math.max(500, (config.refreshReuseGrace * 1000) / 2)),
    clients,
    audience: config.audience,
    refreshTokenTtl: config.refreshTokenTtl,
    clockSkew: config.clockSkew,
    events,
    onFamilyReused: async (family) => {
      await logout.familyEnded(family);
      await backchannel.familyEnded(family);
    },
  });
  const clientAuth = createClientAuthenticator({
    clients,
    failures: stores.rateLimits.limiter({ keyPrefix: 'client-auth', ...toLimit(config.clientAuthRateLimit) }),
    clock,
  });

  const logout = createLogout({
    clients,
    idTokens,
    sessions: stores.browserSessions,
    families: stores.families,
    onSessionEnded: backchannel.sessionEnded,
    events,
    transactionKey: Buffer.from(hkdfSync('sha256', refreshSecret, '', 'token-authority logout confirmation', 32)),
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
    events,
    signIns: logout,
    clock,
  });
  const codes = createAuthorizationCodes({ codes: stores.authorizationCodes, tokens, users: userCache, idTokens, signIns: logout, random, clock });
  const signIn = createSignIn({
    issuer: config.issuer,
    checks: createAuthorizationChecks({ clients, audience: config.audience }),
    pushed: stores.pushedRequests,
    sessions: stores.browserSessions,
    consents: stores.consents,
    codes: withGrantEvents(codes, events),
    users,
    idTokens,
    events,
    // A key of its own for the sign-in forms' CSRF tokens, derived from the shared refresh-token secret.
    transactionKey: Buffer.from(hkdfSync('sha256', refreshSecret, '', 'token-authority sign-in transaction', 32)),
    requirePar: config.signIn.requirePar,
    clock,
    random,
  });
  const mailOut = await createMailOut(config, { queue: stores.mailQueue, refreshSecret, logger, clock, random, print });
  const recovery = createAccountRecovery({
    users: stores.users,
    hasher,
    tokens: createAccountTokens({ store: stores.accountTokens, clock, random }),
    mail: mailOut.outbox,
    links: {
      verifyEmail: (token) => pageLink(config.issuer, ACCOUNT_PAGE_PATHS.verifyEmail, token),
      resetPassword: (token) => pageLink(config.issuer, ACCOUNT_PAGE_PATHS.resetPassword, token),
      confirmEmailChange: (token) => pageLink(config.issuer, ACCOUNT_PAGE_PATHS.confirmEmail, token),
    },
    refusePassword: passwordPolicy.refuse,
    endSessions: (userId) => sessions.endEverySession(userId),
    throttle,
    budgets,
    perAddress: config.mail.addressRateLimit,
    perNetwork: config.mail.ipRateLimit,
    clock,
    logger,
  });
  const app = createApp({
    config,
    logger,
    clock,
    random,
    readiness: [
      ...stores.readiness,
      { name: 'signing-key', check: () => keys.ready() },
      // A directory this instance cannot load any more: it does not follow rotations (issue 23 item 8).
      { name: 'key-directory', check: () => keys.reloadFailure() === undefined },
    ],
    keys,
    tokens,
    users,
    clientAuth,
    sessions,
    codes,
    idTokens,
    signIn,
    logout,
    pages: createPageRenderer({ productName: config.signIn.productName, logoUrl: assets.logo ? PAGES_LOGO_PATH : undefined }),
    pageAssets: assets,
    admin: createAdminService({
      tokens,
      clients: stores.clients,
      clientWrites: clients,
      users: stores.users,
      sessions,
      hasher,
      random,
      keysDir: config.keysDir,
      events,
    }),
    scopes: config.scopesSupported.length > 0 || config.production ? config.scopesSupported : DEV_SCOPES,
    requestScope,
    devMail: mailOut.devMail,
    recovery,
    formKey: Buffer.from(hkdfSync('sha256', refreshSecret, '', 'token-authority account forms', 32)),
    metrics,
  });
  mailOut.outbox.start();
  if (metrics) {
    sampleKeys(metrics, keys, config, () => clock.now());
    sampleStores(metrics, stores.readiness);
    sampleFamilies(metrics, stores.families);
  }
  const webhooks = webhookDelivery(config, { stream: stores.events, logger, random });
  if (webhooks) {
    events.onAppend(() => webhooks.notify());
    await webhooks.start();
  }
  return {
    app,
    stores,
    keys,
    tokens,
    users,
    sessions,
    events,
    webhooks,
    mail: mailOut.outbox,
    recovery,
    metrics,
    seeded,
    async close() {
      await backchannel.stop();
      await recovery.settled();
      await mailOut.outbox.stop();
      await keys.stop();
      await events.flush();
      await webhooks?.stop();
      await stores.close();
    },
  };
}

/** SECURITY_EVENTS=off: events are dropped where they are emitted. */
const NO_SECURITY_EVENTS: SecurityEvents = Object.freeze({
  emit() {},
  flush: () => Promise.resolve(),
  onAppend() {},
});

/** Webhook delivery when WEBHOOK_URLS is set (config checked that WEBHOOK_SECRET is too). */
function webhookDelivery(config: Config, deps: { stream: EventStreamStore; logger: Logger; random: Random }): WebhookDelivery | undefined {
  const { webhookUrls, webhookSecret } = config.events;
  if (webhookUrls.length === 0 || !webhookSecret) return undefined;
  return createWebhookDelivery({
    urls: webhookUrls,
    secret: webhookSecret,
    stream: deps.stream,
    logger: deps.logger,
    consumer: `${hostname()}:${process.pid}:${deps.random.token(6)}`,
    timeoutMs: config.events.webhookTimeout * 1000,
    retryBaseMs: config.events.webhookRetryBaseMs,
    retryMaxMs: config.events.webhookRetryMaxMs,
  });
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

/**
 * Mail out: SMTP when SMTP_URL is set; else in dev the terminal and GET /dev/mail (`devMail`),
 * and in production nothing (logged at start-up and per message).
 */
export async function createMailOut(
  config: Config,
  deps: { queue: MailQueueStore; refreshSecret: string; logger: Logger; clock: Clock; random: Random; print: (text: string) => void },
): Promise<{ outbox: MailOutbox; devMail: (() => readonly DevMail[]) | undefined }> {
  const { mail } = config;
  const productName = config.signIn.productName;
  const host = new URL(config.issuer).hostname;
  let transport: MailTransport | undefined;
  let devMail: (() => readonly DevMail[]) | undefined;
  if (mail.smtpUrl) {
    const ca = mail.smtpCaFile
      ? await readFile(mail.smtpCaFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
          throw new Error(`SMTP_CA_FILE: cannot read ${mail.smtpCaFile} (${err.code ?? String(err)})`, { cause: err });
        })
      : undefined;
    const from = mail.from ?? `"${productName.replace(/["\\]/g, '')}" <no-reply@${host}>`;
    transport = createSmtpTransport({ url: mail.smtpUrl, from, ca, timeoutMs: Math.floor((mail.retryBase * 1000) / 2) });
  } else if (!config.production) {
    const dev = createDevTransport({ print: deps.print, clock: deps.clock });
    transport = dev;
    devMail = dev.recent;
  } else {
    deps.logger.warn('mail: SMTP_URL is unset, so no verification or password-reset mail can be sent');
  }
  const outbox = createMailOutbox({
    queue: deps.queue,
    transport,
    templates: createMailTemplates({ productName, overrideDir: mail.templatesDir }),
    sealKey: Buffer.from(hkdfSync('sha256', deps.refreshSecret, '', 'token-authority mail queue', 32)),
    messageIdDomain: host,
    retry: { baseMs: mail.retryBase * 1000, maxMs: mail.retryMax * 1000, maxAttempts: mail.maxAttempts },
    pollMs: Math.min(1000, mail.retryBase * 1000),
    logger: deps.logger,
    clock: deps.clock,
    random: deps.random,
    consumer: `${hostname()}-${process.pid}-${deps.random.token(6)}`,
  });
  return { outbox, devMail };
}

/** A hosted page's absolute URL carrying a mailed token. */
function pageLink(issuer: string, path: string, token: string): string {
  // Relative to the issuer, which may carry a path of its own.
  const url = new URL(path.slice(1), `${issuer}/`);
  url.searchParams.set('token', token);
  return url.toString();
}
