/**
 * The rate-limit backend contract, run against the in-memory adapter (dev mode), a real
 * standalone redis-server and a real three-master Redis Cluster: spending, blocking with
 * a retry time, refunds, resetting, windows ending, and counters shared
 * between two backend instances on one Redis (two server processes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryRateLimits } from '../../src/stores/memory/rate-limits.js';
import { closeRedis, connectRedis, createRedisClient, type RedisClient } from '../../src/stores/redis/connection.js';
import { createRedisRateLimits } from '../../src/stores/redis/rate-limits.js';
import { StoreUnavailableError, type RateLimitBackend } from '../../src/stores/types.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

interface Backend {
  readonly name: string;
  start(): Promise<void>;
  /** Two backends as two server instances would build them; memory ones share nothing. */
  make(): [RateLimitBackend, RateLimitBackend | undefined];
  stop(): Promise<void>;
}

let unique = 0;
const prefix = () => `contract-${process.pid}-${++unique}`;

function describeRateLimitContract(backend: Backend): void {
  describe(`RateLimitBackend contract: ${backend.name}`, () => {
    beforeAll(() => backend.start());
    afterAll(() => backend.stop());

    it('allows the budget, then blocks with a retry time within the window', async () => {
      const [limits] = backend.make();
      const limiter = limits.limiter({ keyPrefix: prefix(), points: 3, durationSec: 60 });
      for (const remaining of [2, 1, 0]) expect(await limiter.consume('k')).toEqual({ allowed: true, remaining, retryAfterMs: 0 });
      const blocked = await limiter.consume('k');
      expect(blocked.allowed).toBe(false);
      expect(blocked.retryAfterMs).toBeGreaterThan(55_000);
      expect(blocked.retryAfterMs).toBeLessThanOrEqual(60_000);
      // Keys are independent.
      expect((await limiter.consume('other')).allowed).toBe(true);
    });

    it('reset forgets a key, and refund gives a point back', async () => {
      const [limits] = backend.make();
      const limiter = limits.limiter({ keyPrefix: prefix(), points: 2, durationSec: 60 });
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 1 });
      await limiter.refund('k');
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 1 });
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
      expect((await limiter.consume('k')).allowed).toBe(false);
      await limiter.reset('k');
      expect(await limiter.consume('k')).toMatchObject({ allowed: true, remaining: 1 });
    });

    it('opens again when the window ends', async () => {
      const [limits] = backend.make();
      const limiter = limits.limiter({ keyPrefix: prefix(), points: 1, durationSec: 1 });
      await limiter.consume('k');
      expect((await limiter.consume('k')).allowed).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect((await limiter.consume('k')).allowed).toBe(true);
    });

    it('a refund after the window ended gives nothing: the next window does not start in credit', async () => {
      const [limits] = backend.make();
      const limiter = limits.limiter({ keyPrefix: prefix(), points: 2, durationSec: 1 });
      await limiter.consume('k');
      // The window ends while the attempt is still being judged (an argon2 hash, say)...
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await limiter.refund('k');
      // ...so the new window holds its 2 points, not 3.
      expect((await limiter.consume('k')).allowed).toBe(true);
      expect((await limiter.consume('k')).allowed).toBe(true);
      expect((await limiter.consume('k')).allowed).toBe(false);
      // A refund of more than was spent gives back only what was spent.
      await limiter.reset('k');
      await limiter.consume('k');
      await limiter.refund('k', 5);
      for (let i = 0; i < 2; i++) expect((await limiter.consume('k')).allowed).toBe(true);
      expect((await limiter.consume('k')).allowed).toBe(false);
    });

    it('shares counters between instances on one store', async () => {
      const [one, two] = backend.make();
      if (!two) return;
      const keyPrefix = prefix();
      const a = one.limiter({ keyPrefix, points: 4, durationSec: 60 });
      const b = two.limiter({ keyPrefix, points: 4, durationSec: 60 });
      await a.consume('k');
      await b.consume('k');
      await a.consume('k');
      await b.consume('k');
      expect((await a.consume('k')).allowed).toBe(false);
      expect((await b.consume('k')).allowed).toBe(false);
    });
  });
}

describeRateLimitContract({
  name: 'memory',
  start: async () => undefined,
  make: () => [createMemoryRateLimits(), undefined],
  stop: async () => undefined,
});

function redisBackend(name: string, start: () => Promise<{ clients: [RedisClient, RedisClient]; stop(): Promise<void> }>): Backend {
  let running: Awaited<ReturnType<typeof start>> | undefined;
  return {
    name,
    start: async () => {
      running = await start();
    },
    make: () => [createRedisRateLimits(running!.clients[0]), createRedisRateLimits(running!.clients[1])],
    stop: async () => running?.stop(),
  };
}

async function twoClients(options: Parameters<typeof createRedisClient>[0]): Promise<[RedisClient, RedisClient]> {
  const clients: [RedisClient, RedisClient] = [createRedisClient(options), createRedisClient(options)];
  await Promise.all(clients.map((client) => connectRedis(client)));
  return clients;
}

let standalone: TestRedis;
describeRateLimitContract(
  redisBackend('redis', async () => {
    standalone = await startTestRedis();
    const clients = await twoClients({ url: standalone.url });
    return {
      clients,
      stop: async () => {
        await Promise.all(clients.map(closeRedis));
        await standalone.stop();
      },
    };
  }),
);

let cluster: TestRedisCluster;
describeRateLimitContract(
  redisBackend('redis cluster', async () => {
    cluster = await startTestRedisCluster();
    const clients = await twoClients({ clusterNodes: cluster.nodes });
    return {
      clients,
      stop: async () => {
        await Promise.all(clients.map(closeRedis));
        await cluster.stop();
      },
    };
  }),
);

/**
 * `client` as the limiter sees it, except that the first reply (a command's, or a
 * MULTI's) after `arm()` is held until `afterReply` has run: a window that ends the
 * moment the limiter has read anything.
 */
function endingAfterFirstReply(client: RedisClient, afterReply: () => Promise<unknown>): RedisClient & { arm(): void } {
  let armed = false;
  const settle = async (reply: Promise<unknown>) => {
    const value = await reply;
    if (armed) {
      armed = false;
      await afterReply();
    }
    return value;
  };
  const wrapPipeline = (pipeline: object): object => {
    const proxy: object = new Proxy(pipeline, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const result: unknown = value.apply(target, args);
          if (property === 'exec') return settle(result as Promise<unknown>);
          return result === target ? proxy : result;
        };
      },
    });
    return proxy;
  };
  return new Proxy(client, {
    get(target, property) {
      if (property === 'arm')
        return () => {
          armed = true;
        };
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = value.apply(target, args);
        if (property === 'multi' || property === 'pipeline') return wrapPipeline(result as object);
        return result instanceof Promise ? settle(result) : result;
      };
    },
  }) as RedisClient & { arm(): void };
}

describe('RateLimitBackend on Redis: a refund is one atomic step', () => {
  it('a window that ends while a refund runs leaves no credit for the next one', async () => {
    const redis = await startTestRedis();
    const client = createRedisClient({ url: redis.url });
    const other = createRedisClient({ url: redis.url });
    try {
      await Promise.all([connectRedis(client), connectRedis(other)]);
      const keyPrefix = prefix();
      // The counter's window ends right after the refund's first reply.
      const proxied = endingAfterFirstReply(client, () => other.del(`rl:${keyPrefix}:k`));
      const limiter = createRedisRateLimits(proxied).limiter({ keyPrefix, points: 2, durationSec: 60 });
      await limiter.consume('k');
      proxied.arm();
      await limiter.refund('k');
      // A new window: exactly its 2 points, not 3.
      expect((await limiter.consume('k')).allowed).toBe(true);
      expect((await limiter.consume('k')).allowed).toBe(true);
      expect((await limiter.consume('k')).allowed).toBe(false);
    } finally {
      await Promise.all([closeRedis(client), closeRedis(other)]);
      await redis.stop();
    }
  });
});

describe('RateLimitBackend on Redis: failure', () => {
  it('rejects with StoreUnavailableError when Redis is down, so callers fail closed', async () => {
    const redis = await startTestRedis();
    const client = createRedisClient({ url: redis.url });
    await connectRedis(client);
    const limiter = createRedisRateLimits(client).limiter({ keyPrefix: prefix(), points: 5, durationSec: 60 });
    await limiter.consume('k');
    await redis.kill();
    await expect(limiter.consume('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(limiter.refund('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(limiter.reset('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await closeRedis(client);
    await redis.stop();
  });
});
