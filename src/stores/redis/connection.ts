/**
 * The Redis connection every Redis-backed store shares (families, denylist, rate limits,
 * readiness). Built to fail fast and never replay: a command that cannot be sent now is
 * rejected now (so the caller answers 503), and a command whose connection dropped
 * mid-flight is rejected, not silently re-sent after a reconnect. Re-sending a rotation
 * the caller was already told had failed would turn the client's honest retry into
 * "reuse" and revoke its family.
 */
import { createHash } from 'node:crypto';
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../types.js';

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /** `redis://` or `rediss://` URL of a standalone server. */
  readonly url?: string | undefined;
  /** Seeds of a Redis Cluster; when given, `url` is ignored. */
  readonly clusterNodes?: readonly { readonly host: string; readonly port: number }[] | undefined;
  /** Milliseconds to establish a connection (default 1000); keep it below `commandTimeoutMs`. */
  readonly connectTimeoutMs?: number;
  /** Milliseconds before a sent command is given up (default 2000). */
  readonly commandTimeoutMs?: number;
}

// Connecting must give up before a queued command's timeout fires: ioredis does not take a
// timed-out command back out of a connection's queue, so it would still run on connect.
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/** Reconnects forever, backing off to at most one attempt per second. */
const reconnectDelay = (attempt: number): number => Math.min(50 * attempt, 1000);

/**
 * A client that has not connected yet (`lazyConnect`): call `connectRedis` at start-up.
 * Until it is ready, and whenever the connection is lost, commands reject at once.
 */
export function createRedisClient(options: RedisClientOptions): RedisClient {
  const nodeOptions: RedisOptions = {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    // 0: commands in flight when the connection drops are rejected at the first close.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
    retryStrategy: reconnectDelay,
    // Commands issued in one turn of the event loop (concurrent requests') go out in one
    // socket write: under load the per-command write was the largest cost of a Redis call.
    enableAutoPipelining: true,
  };

  if (options.clusterNodes && options.clusterNodes.length > 0) {
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: true,
      // No auto-pipelining at the Cluster level: with it a client whose master was killed
      // and restarted did not get its slots back within 15 s (families.redis.test.ts).
      clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 2000),
      // A slot whose master is gone answers CLUSTERDOWN or refuses connections; a few
      // short retries ride out a failover, more would hold the request for seconds.
      maxRedirections: 6,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: 1000,
      // ioredis forces node connections to queue while they first connect (bounded by
      // connectTimeout < commandTimeout) and lets the Cluster, not the node, reconnect.
      redisOptions: nodeOptions,
    };
    return new Cluster(
      options.clusterNodes.map(({ host, port }) => ({ host, port })),
      clusterOptions,
    );
  }

  if (!options.url) throw new TypeError('createRedisClient: give a url or clusterNodes');
  return new Redis(options.url, { ...nodeOptions, enableOfflineQueue: false });
}

/**
 * Connects a client made by `createRedisClient`. Rejects with StoreUnavailableError when
 * Redis cannot be reached; the client keeps trying in the background either way.
 */
export async function connectRedis(client: RedisClient): Promise<void> {
  // Connection errors are also emitted as events; without a listener Node would treat
  // them as unhandled and crash the process on every reconnect attempt.
  if (client.listenerCount('error') === 0) client.on('error', () => undefined);
  if (client.status !== 'wait') return;
  try {
    await client.connect();
  } catch (err) {
    throw new StoreUnavailableError('redis', { cause: err });
  }
}

/**
 * Resolves when Redis can serve the service (connecting first if needed);
 * StoreUnavailableError otherwise. Standalone: it answers PING. Cluster: the service's keys
 * (families by user, denylist by token id, rate limits by address and account) spread over
 * every hash slot, so one live node says nothing: every slot must be served (CLUSTER SLOTS
 * covers all 16384) and every master that serves slots must answer its own PING.
 */
export async function pingRedis(client: RedisClient): Promise<void> {
  await connectRedis(client);
  if (client instanceof Cluster) return pingCluster(client);
  const reply = await guardRedis('redis', () => client.ping());
  if (reply !== 'PONG') throw new StoreUnavailableError('redis', { cause: new Error(`unexpected PING reply`) });
}

const CLUSTER_SLOTS = 16384;

async function pingCluster(cluster: Cluster): Promise<void> {
  const ranges = (await guardRedis('redis', () => cluster.cluster('SLOTS'))) as unknown as [number, number, [string, number, ...unknown[]]][];
  const covered = ranges.reduce((sum, [from, to]) => sum + (to - from + 1), 0);
  if (covered < CLUSTER_SLOTS) throw new StoreUnavailableError('redis', { cause: new Error(`${CLUSTER_SLOTS - covered} hash slots have no master`) });
  // ioredis drops a node whose connection ended from its pool (and maps addresses through
  // natMap): a master the cluster still names but the pool lacks is one we cannot reach.
  const pool = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const natMap = cluster.options.natMap;
  const masters = new Set(
    ranges.map(([, , [host, port]]) => {
      const mapped = typeof natMap === 'object' && natMap !== null ? (natMap as Record<string, { host: string; port: number }>)[`${host}:${port}`] : undefined;
      return mapped ? `${mapped.host}:${mapped.port}` : `${host}:${port}`;
    }),
  );
  await Promise.all(
    [...masters].map(async (address) => {
      const node = pool.get(address);
      if (!node) {
        // ioredis re-reads the slot map only after an error on a command: ask it to now,
        // so that a master back up shows here at the next probe.
        cluster.refreshSlotsCache();
        throw new StoreUnavailableError('redis', { cause: new Error(`master ${address} is not connected`) });
      }
      const reply = await guardRedis('redis', () => node.ping());
      if (reply !== 'PONG') throw new StoreUnavailableError('redis', { cause: new Error(`unexpected PING reply`) });
    }),
  );
}

/** Closes gracefully (QUIT), falling back to dropping the connection. Never rejects. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/**
 * Error replies that mean "not now" rather than "this command is wrong": the server is
 * loading, the cluster is resharding or failing over, the node is read-only, or memory
 * is full. Any other error reply is a bug and is rethrown unchanged.
 */
const UNAVAILABLE_REPLIES = ['LOADING', 'CLUSTERDOWN', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'BUSY', 'OOM', 'NOREPLICAS', 'MOVED', 'ASK'];

export function isRedisUnavailable(err: unknown): boolean {
  if (err instanceof ReplyError) {
    const message = (err as Error).message;
    return UNAVAILABLE_REPLIES.some((prefix) => message.startsWith(`${prefix} `) || message === prefix);
  }
  // Everything else ioredis rejects with is about reaching the server: connection closed
  // or not writable, command timed out, too many cluster redirections, all nodes failed.
  return err instanceof Error;
}

/** Runs one Redis operation, turning "Redis is unreachable" into StoreUnavailableError. */
export async function guardRedis<T>(store: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (isRedisUnavailable(err)) throw new StoreUnavailableError(store, { cause: err });
    throw err;
  }
}

/** A Lua script run with EVALSHA, falling back to EVAL once per server that lacks it. */
export interface RedisScript {
  readonly source: string;
  readonly sha: string;
}

export function defineScript(source: string): RedisScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Runs `script` with `keys` (which must share one hash slot under Cluster) and `args`.
 * A NOSCRIPT reply means nothing ran, so retrying with EVAL cannot apply the script twice.
 */
export async function runScript(client: RedisClient, script: RedisScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (err instanceof ReplyError && (err as Error).message.startsWith('NOSCRIPT')) {
      return client.eval(script.source, keys.length, ...keys, ...args);
    }
    throw err;
  }
}
