/**
 * The rate-limit backend contract, run against the in-memory adapter (dev mode), a real
 * standalone redis-server and a real three-master Redis Cluster: spending, blocking with
 * a retry time, resetting, windows ending, and counters shared
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

    it('reset forgets a key', async () => {
      const [limits] = backend.make();
      const limiter = limits.limiter({ keyPrefix: prefix(), points: 2, durationSec: 60 });
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

describe('RateLimitBackend on Redis: failure', () => {
  it('rejects with StoreUnavailableError when Redis is down, so callers fail closed', async () => {
    const redis = await startTestRedis();
    const client = createRedisClient({ url: redis.url });
    await connectRedis(client);
    const limiter = createRedisRateLimits(client).limiter({ keyPrefix: prefix(), points: 5, durationSec: 60 });
    await limiter.consume('k');
    await redis.kill();
    await expect(limiter.consume('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(limiter.reset('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await closeRedis(client);
    await redis.stop();
  });
});
