/**
 * The server, and with `start.cts` (which only sizes the thread pool and calls `main`)
 * the only module that reads `process.env` or exits the process. It wires config →
 * stores → services → Koa app, listens, and owns shutdown.
 */
import cluster from 'node:cluster';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { systemClock, type Clock } from './clock.js';
import { ConfigError, parseConfig, type Config, type RateBudget } from './config.js';
import { DEV_PUBLIC_CLIENT_ID, DEV_SCOPES, DEV_SERVICE_CLIENT_ID, DEV_USER_EMAIL, seedDevData, type SeedResult } from './dev/seed.js';
import { createApp } from './http/app.js';
import { createLogger, type Logger } from './log.js';
import { cryptoRandom, type Random } from './random.js';
import { createMemoryClientStore } from './stores/memory/clients.js';
import { createMemoryDenylist } from './stores/memory/denylist.js';
import { createMemoryFamilyStore } from './stores/memory/families.js';
import { createMemoryRateLimits } from './stores/memory/rate-limits.js';
import { createMemoryUserStore } from './stores/memory/users.js';
import { createMongoConnection, createMongoStores } from './stores/mongo/connection.js';
import { closeRedis, connectRedis, createRedisClient, pingRedis } from './stores/redis/connection.js';
import { createRedisDenylist } from './stores/redis/denylist.js';
import { createRedisFamilyStore } from './stores/redis/families.js';
import { createRedisRateLimits } from './stores/redis/rate-limits.js';
import type { AccessTokenDenylist, ClientStore, FamilyStore, RateLimitBackend, UserStore } from './stores/types.js';
import { cacheClients } from './clients/cache.js';
import { KeyRingError } from './keys/errors.js';
import { ensureRefreshSecret, readRefreshSecret, REFRESH_SECRET_FILE } from './keys/refresh-secret.js';
import { createKeyRingSource, type KeyRingSource } from './keys/source.js';
import { createClientAuthenticator } from './oauth/client-auth.js';
import { createTokenService, type TokenService } from './oauth/token-service.js';
import { createAccessTokens } from './tokens/access-token.js';
import { createRefreshTokens } from './tokens/refresh-token.js';
import { createLoginThrottle } from './users/login-throttle.js';
import { createPasswordHasher } from './users/passwords.js';
import { createUserService } from './users/service.js';

export interface Stores {
  readonly users: UserStore;
  readonly clients: ClientStore;
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
      throw new KeyRingError(`REFRESH_TOKEN_SECRET is unset and KEYS_DIR holds no ${REFRESH_SECRET_FILE}: run \`npm run keys:rotate\` (it creates one) or set REFRESH_TOKEN_SECRET`, file);
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
export async function createStores(config: Config, { clock, logger }: { clock: Clock; logger: Logger }): Promise<Stores> {
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
  if (config.mongodbUri) {
    const connection = createMongoConnection(config.mongodbUri, { clock });
    await connection.init();
    ({ users, clients } = createMongoStores(connection));
    readiness.push({ name: 'mongodb', check: () => connection.ping() });
    closers.push(() => connection.close());
  } else {
    users = createMemoryUserStore({ clock });
    clients = createMemoryClientStore({ clock });
    embedded.push('users', 'clients');
  }

  let families: FamilyStore;
  let denylist: AccessTokenDenylist;
  let rateLimits: RateLimitBackend;
  if (config.redisUrl || config.redisClusterNodes) {
    const redis = createRedisClient({ url: config.redisUrl, clusterNodes: config.redisClusterNodes });
    redis.on('error', (err: Error) => logger.warn({ err: { message: err.message } }, 'redis connection problem'));
    await connectRedis(redis).catch((err: unknown) => logger.error({ err }, 'redis unreachable at start-up; retrying in the background'));
    families = createRedisFamilyStore({ ...familyOptions, redis });
    denylist = createRedisDenylist({ redis, clock });
    rateLimits = createRedisRateLimits(redis);
    readiness.push({ name: 'redis', check: () => pingRedis(redis) });
    closers.push(() => closeRedis(redis));
  } else {
    families = createMemoryFamilyStore(familyOptions);
    denylist = createMemoryDenylist({ clock });
    rateLimits = createMemoryRateLimits();
    embedded.push('refresh-token families', 'access-token denylist', 'rate limits');
  }

  return {
    users,
    clients,
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

export interface RunningServer {
  readonly server: Server;
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish (at most `shutdownTimeout`), closes the stores. */
  stop(): Promise<void>;
}

export interface Service {
  readonly app: ReturnType<typeof createApp>;
  readonly stores: Stores;
  readonly keys: KeyRingSource;
  readonly tokens: TokenService;
  /** Dev mode: what was seeded (secrets only when created now). */
  readonly seeded: SeedResult | undefined;
  close(): Promise<void>;
}

/** Stores, then services, then the Koa app; nothing listens yet. Tests build exactly this. */
export async function createService(config: Config, { logger, clock = systemClock, random = cryptoRandom }: { logger: Logger; clock?: Clock; random?: Random }): Promise<Service> {
  // Read before anything connects: in production a missing key stops start-up here.
  const refreshSecret = await refreshTokenSecret(config, logger, random);
  const stores = await createStores(config, { clock, logger });
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
  const tokens = createTokenService({ accessTokens, families: stores.families, refreshTokens, denylist: stores.denylist, users: stores.users, audience: config.audience, refreshTokenTtl: config.refreshTokenTtl, clockSkew: config.clockSkew });
  const clientAuth = createClientAuthenticator({
    clients,
    failures: stores.rateLimits.limiter({ keyPrefix: 'client-auth', ...toLimit(config.clientAuthRateLimit) }),
    clock,
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
    families: stores.families,
    clients,
    scopes: config.scopesSupported.length > 0 || config.production ? config.scopesSupported : DEV_SCOPES,
  });
  return {
    app,
    stores,
    keys,
    tokens,
    seeded,
    async close() {
      await keys.stop();
      await stores.close();
    },
  };
}

/** Starts the whole service for `config` and listens; used by `main` and by tests that need a real server. */
export async function startServer(config: Config, deps: { logger: Logger; clock?: Clock; random?: Random }): Promise<RunningServer> {
  const { logger } = deps;
  const service = await createService(config, deps);
  const { app } = service;
  const server = createServer(
    {
      // Slow clients (slow-loris) are cut off: headers and the whole request each have a
      // deadline, checked every half second rather than Node's default 30 s.
      headersTimeout: config.http.headersTimeout * 1000,
      requestTimeout: config.http.requestTimeout * 1000,
      keepAliveTimeout: config.http.keepAliveTimeout * 1000,
      connectionsCheckingInterval: 500,
      maxHeaderSize: 16 * 1024,
    },
    app.callback(),
  );
  // Malformed requests that never reach Koa (oversized headers, bad framing) still get the
  // one JSON error format, and the socket is closed.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const [status, reason] = tooLarge ? [431, 'Request Header Fields Too Large'] : timeout ? [408, 'Request Timeout'] : [400, 'Bad Request'];
    const body = JSON.stringify({ error: 'invalid_request', error_description: tooLarge ? 'request headers too large' : timeout ? 'request timed out' : 'malformed HTTP request' });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  const inFlight = new Set<ServerResponse>();
  let stopping = false;
  server.on('request', (_req, res: ServerResponse) => {
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    if (stopping) res.shouldKeepAlive = false;
  });

  await new Promise<void>((resolve, reject) => {
    // Name the variables to change: "EADDRINUSE" or "ENOTFOUND" alone does not.
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`HOST/PORT: cannot listen on ${config.host}:${config.port} (${err.code ?? err.message})`, { cause: err }));
    });
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info(
    {
      url,
      issuer: config.issuer,
      production: config.production,
      // What libuv was given (start.cts sizes it); 4 is libuv's own default.
      threadPool: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
      ...(cluster.isWorker && { worker: cluster.worker?.id }),
    },
    'listening',
  );
  const { embedded } = service.stores;
  if (service.seeded && embedded.length > 0) {
    logger.warn({ embedded }, `dev mode: ${embedded.join(', ')} are in memory; nothing is persisted and everything is lost on exit`);
  }
  // Lines are buffered (src/log.ts): start-up's, the dev-mode warning among them, go out now,
  // before the dev hints.
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  if (service.seeded) printDevHints(config, service.seeded);

  let stopped: Promise<void> | undefined;
  return {
    server,
    url,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        for (const res of inFlight) res.shouldKeepAlive = false;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const deadline = setTimeout(() => {
          logger.warn({ inFlight: inFlight.size }, 'shutdown deadline reached; closing remaining connections');
          server.closeAllConnections();
        }, config.shutdownTimeout * 1000);
        await closed;
        clearTimeout(deadline);
        await service.close();
        logger.info('stopped');
      })();
      return stopped;
    },
  };
}

function printDevHints(config: Config, seeded: { clientSecret: string | undefined; userPassword: string | undefined }): void {
  // Printed to the terminal once, never to the log: these are secrets.
  const secret = seeded.clientSecret ?? '<the secret printed when it was created>';
  const password = seeded.userPassword ?? '<the password printed when it was created>';
  process.stdout.write(
    [
      '',
      'Dev mode is ready. Seeded:',
      `  client ${DEV_SERVICE_CLIENT_ID} (client_credentials)  secret: ${secret}`,
      `  client ${DEV_PUBLIC_CLIENT_ID} (public, password + refresh_token)`,
      `  user   ${DEV_USER_EMAIL} (role admin)  password: ${password}`,
      '',
      'Get a token:',
      `  curl -s -u ${DEV_SERVICE_CLIENT_ID}:${secret} -d grant_type=client_credentials ${config.issuer}/oauth/token`,
      `  curl -s -d grant_type=password -d client_id=${DEV_PUBLIC_CLIENT_ID} --data-urlencode username=${DEV_USER_EMAIL} --data-urlencode 'password=${password}' ${config.issuer}/oauth/token`,
      '',
    ].join('\n') + '\n',
  );
}

export async function main(): Promise<void> {
  let config: Config;
  try {
    config = parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config, logger);
  let running: RunningServer;
  try {
    running = await startServer(config, { logger });
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    process.stderr.write(`start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      running.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

/**
 * Cluster mode (`WORKERS` > 1): this process only supervises. Each worker runs the whole
 * service on the shared port; the stores are shared (Redis, MongoDB) and every worker
 * watches the key folder itself. A worker that dies is replaced, unless workers keep dying
 * (a crash loop), which ends the service with exit 1, as one process that cannot start
 * would: 2 × WORKERS workers in a row that exit before they listen (a store that is
 * unreachable fails each start only after its connect timeout), or more than that many
 * exits within 10 s. Replacements after failed starts wait a little longer each time.
 * SIGTERM/SIGINT are passed on; each worker drains its own requests, and the primary exits
 * 0 once all have exited.
 */
function runPrimary(config: Config, logger: Logger): void {
  let stopping = false;
  let alive = 0;
  const quickDeaths: number[] = [];
  const listened = new Set<number>();
  let failedStarts = 0;
  const fork = () => {
    alive += 1;
    cluster.fork();
  };
  cluster.on('listening', (worker) => {
    listened.add(worker.id);
    failedStarts = 0;
  });
  cluster.on('exit', (worker, code, signal) => {
    alive -= 1;
    if (stopping) {
      if (alive === 0) {
        logger.info('all workers stopped');
        process.exit(0);
      }
      return;
    }
    const now = Date.now();
    quickDeaths.push(now);
    while (quickDeaths.length > 0 && quickDeaths[0]! < now - 10_000) quickDeaths.shift();
    const started = listened.delete(worker.id);
    if (!started) failedStarts += 1;
    if (failedStarts >= config.workers * 2 || quickDeaths.length > config.workers * 2) {
      logger.fatal({ code, signal, failedStarts }, started ? 'workers keep exiting right after start; giving up' : 'workers keep failing to start; giving up');
      process.exit(1);
    }
    const delayMs = started ? 0 : Math.min(250 * 2 ** failedStarts, 5000);
    logger.error({ worker: worker.id, code, signal, delayMs }, 'worker exited; starting a new one');
    setTimeout(() => {
      if (!stopping) fork();
    }, delayMs);
  });
  for (let index = 0; index < config.workers; index += 1) fork();
  logger.info({ workers: config.workers }, 'cluster primary started');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopping = true;
      logger.info({ signal }, 'shutting down workers');
      if (alive === 0) process.exit(0); // only replacements waiting to be forked
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
      setTimeout(() => {
        logger.error('workers did not stop in time');
        process.exit(1);
      }, (config.shutdownTimeout + 5) * 1000).unref();
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
