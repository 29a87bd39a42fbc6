/**
 * /readyz on a real three-master Redis Cluster: it reports what the service needs (every
 * master that serves slots, and a covered cluster), not merely that some node answers PING;
 * and the dev mode that cannot share Redis across instances says so.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { startTestService, type TestService } from '../support/app.js';
import { waitFor } from '../support/processes.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startTestRedis } from '../support/redis.js';

let cluster: TestRedisCluster;
let service: TestService;
beforeAll(async () => {
  cluster = await startTestRedisCluster();
  service = await startTestService({ REDIS_CLUSTER_NODES: cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',') });
}, 60_000);
afterAll(async () => {
  await service?.close();
  await cluster?.stop();
});

const readyz = () => request(service.callback).get('/readyz');

describe('readiness on a Redis Cluster (issue 23 item 15)', () => {
  it('goes 503 naming redis while one master is down, and back to 200 when it returns', async () => {
    expect((await readyz()).status).toBe(200);
    await cluster.killNode(1);
    // At once (its PING fails), not only after the cluster declares the node failed.
    await waitFor(async () => (await readyz()).status === 503, 5_000, 100);
    const res = await readyz();
    expect(res.body).toMatchObject({ error: 'temporarily_unavailable', checks: { redis: 'failing' } });
    expect(res.body.error_description).toMatch(/redis/);
    // And it stays so once the other masters have marked it failed (node timeout 2 s).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await readyz()).status).toBe(503);
    await cluster.restartNode(1);
    await waitFor(async () => (await readyz()).status === 200, 20_000, 200);
  }, 40_000);
});

describe('dev mode with embedded users on a shared Redis (issue 23 item 15)', () => {
  it('warns loudly that only one instance may run, and says nothing of it with embedded Redis', async () => {
    const redis = await startTestRedis();
    const shared = await startTestService({ REDIS_URL: redis.url });
    const alone = await startTestService();
    try {
      const warnings = (logs: TestService['logs']) =>
        logs.entries().filter((entry) => entry.level === 'warn' && /run ONE instance only/.test(String(entry.msg)));
      expect(warnings(shared.logs)).toHaveLength(1);
      expect(String(warnings(shared.logs)[0]!.msg)).toMatch(/Set MONGODB_URI/);
      expect(warnings(alone.logs)).toHaveLength(0);
    } finally {
      await shared.close();
      await alone.close();
      await redis.stop();
    }
  });

  it('refuses WORKERS > 1 with embedded users, even with a shared Redis', () => {
    expect(() => parseConfig({ NODE_ENV: 'development', WORKERS: '2', REDIS_URL: 'redis://127.0.0.1:1' })).toThrow(
      /WORKERS: more than one worker needs MONGODB_URI/,
    );
  });
});
