/**
 * The AttemptLedger contract (src/stores/types.ts) on every backend: in memory, a real
 * redis-server and a real three-master Redis Cluster, where the budgets of one attempt
 * live in different slots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryAttemptLedger } from '../../src/stores/memory/login-attempts.js';
import { closeRedis, connectRedis, createRedisClient, type RedisClient } from '../../src/stores/redis/connection.js';
import { createRedisAttemptLedger } from '../../src/stores/redis/login-attempts.js';
import type { AttemptBudget, AttemptLedger } from '../../src/stores/types.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

interface Backend {
  readonly name: string;
  start(): Promise<AttemptLedger>;
  stop(): Promise<void>;
}

function redisBackend(name: string, start: () => Promise<{ client: RedisClient; stop(): Promise<void> }>): Backend {
  let running: { client: RedisClient; stop(): Promise<void> } | undefined;
  return {
    name,
    async start() {
      running = await start();
      await connectRedis(running.client);
      return createRedisAttemptLedger(running.client);
    },
    async stop() {
      if (running) await closeRedis(running.client);
      await running?.stop();
    },
  };
}

const backends: Backend[] = [
  { name: 'memory', start: async () => createMemoryAttemptLedger(), stop: async () => undefined },
  redisBackend('Redis', async () => {
    const redis: TestRedis = await startTestRedis();
    return { client: createRedisClient({ url: redis.url }), stop: () => redis.stop() };
  }),
  redisBackend('Redis Cluster', async () => {
    const cluster: TestRedisCluster = await startTestRedisCluster();
    return { client: createRedisClient({ clusterNodes: cluster.nodes }), stop: () => cluster.stop() };
  }),
];

let run = 0;
/** Budgets of their own for each test. */
const budgets = (...points: number[]): AttemptBudget[] => {
  run += 1;
  return points.map((size, index) => ({ key: `test:${run}:${index}`, points: size, windowMs: 60_000 }));
};

describe.each(backends)('AttemptLedger contract: $name', (backend) => {
  let ledger: AttemptLedger;
  beforeAll(async () => {
    ledger = await backend.start();
  }, 30_000);
  afterAll(() => backend.stop());

  it('holds in-flight attempts apart from failures: a budget full of holds is inFlight, full of failures is not', async () => {
    const attempt = budgets(2, 10, 10);
    expect(await ledger.reserve('a', attempt, 30_000)).toEqual({ admitted: true });
    expect(await ledger.reserve('b', attempt, 30_000)).toEqual({ admitted: true });
    expect(await ledger.reserve('c', attempt, 30_000)).toMatchObject({ admitted: false, inFlight: true });
    await ledger.settle('a', attempt, 'failed');
    await ledger.settle('b', attempt, 'released');
    expect(await ledger.reserve('d', attempt, 30_000)).toEqual({ admitted: true });
    expect(await ledger.reserve('e', attempt, 30_000)).toMatchObject({ admitted: false, inFlight: true });
    await ledger.settle('d', attempt, 'failed');
    const refused = await ledger.reserve('f', attempt, 30_000);
    expect(refused).toMatchObject({ admitted: false, inFlight: false });
    expect(refused.admitted === false && refused.retryAfterMs).toBeGreaterThan(55_000);
  });

  it('a success forgets the failures of a budget marked resetOnSuccess only', async () => {
    const [accountIp, account] = budgets(2, 2);
    const attempt = [{ ...accountIp!, resetOnSuccess: true }, account!];
    await ledger.reserve('a', attempt, 30_000);
    await ledger.settle('a', attempt, 'failed');
    await ledger.reserve('b', attempt, 30_000);
    await ledger.settle('b', attempt, 'succeeded');
    // account+IP is clear again; the account budget keeps its one failure.
    expect(await ledger.reserve('c', [attempt[0]!], 30_000)).toEqual({ admitted: true });
    await ledger.settle('c', [attempt[0]!], 'released');
    expect(await ledger.reserve('d', [account!], 30_000)).toEqual({ admitted: true });
    expect(await ledger.reserve('e', [account!], 30_000)).toMatchObject({ admitted: false, inFlight: true });
  });

  it('all or nothing: refused by one budget, it holds nothing in the others', async () => {
    const [small, large] = budgets(1, 2);
    await ledger.reserve('a', [small!], 30_000);
    await ledger.settle('a', [small!], 'failed');
    expect(await ledger.reserve('b', [small!, large!], 30_000)).toMatchObject({ admitted: false, inFlight: false });
    expect(await ledger.reserve('c', [large!], 30_000)).toEqual({ admitted: true });
    expect(await ledger.reserve('d', [large!], 30_000)).toEqual({ admitted: true });
  });

  it('settling an id never reserved changes nothing; an unsettled hold lapses after holdMs', async () => {
    const attempt = budgets(1);
    await ledger.settle('late', attempt, 'released');
    expect(await ledger.reserve('short', attempt, 200)).toEqual({ admitted: true });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await ledger.reserve('next', attempt, 30_000)).toEqual({ admitted: true });
  });
});
