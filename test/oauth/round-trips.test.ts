/**
 * What a refresh costs in Redis (issue 18 item 1), counted by the servers themselves
 * (MONITOR, which names the commands a script runs apart) on a single Redis and on a three-master
 * Cluster: exactly one script call per refresh and no GET; a token whose tag does not
 * verify costs nothing. Users are embedded here, so every command counted is Redis's part.
 */
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';
import { passwordLogin, refreshGrant } from '../support/http.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { firstKey, isBackground } from '../support/redis-monitor.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

/** The security event stream: a request's XADD to it is not a round trip of the token work itself. */
const EVENT_STREAM_KEY = /^events:security/;

/**
 * Counts the data commands that reach `nodes` from clients (MONITOR; commands a script
 * runs are reported with source `lua` and are left out, and so are the background workers'
 * polls), by name, until `stop`.
 */
async function watchCommands(nodes: readonly Redis[]) {
  const counts: Record<string, number> = {};
  const monitors = await Promise.all(nodes.map((node) => node.monitor()));
  for (const monitor of monitors) {
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      const name = args[0]!.toLowerCase();
      if (isBackground(args, source) || EVENT_STREAM_KEY.test(firstKey(args))) return;
      counts[name] = (counts[name] ?? 0) + 1;
    });
  }
  return {
    async stop() {
      // MONITOR streams asynchronously: let the last lines arrive.
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const monitor of monitors) monitor.disconnect();
      return counts;
    },
  };
}

function describeRoundTrips(name: string, start: () => Promise<{ env: Record<string, string>; nodes: Redis[]; stop(): Promise<void> }>) {
  describe(`Redis round trips: ${name}`, () => {
    let service: TestService;
    let nodes: Redis[];
    let stop: () => Promise<void>;

    beforeAll(async () => {
      const started = await start();
      ({ nodes, stop } = started);
      service = await startTestService(started.env);
    }, 30_000);
    afterAll(async () => {
      await service?.close();
      await stop?.();
    });

    it('a refresh is one script call and no GET; a forged token is none', async () => {
      const login = await passwordLogin(service);
      expect(login.status).toBe(200);
      // The first call loads the script where it is missing.
      let token = (await refreshGrant(service, login.body.refresh_token)).body.refresh_token as string;
      const watch = await watchCommands(nodes);
      const refreshes = 5;
      for (let index = 0; index < refreshes; index += 1) {
        const response = await refreshGrant(service, token);
        expect(response.status).toBe(200);
        token = response.body.refresh_token;
      }
      const forged = `${token.slice(0, -4)}AAAA`;
      expect((await refreshGrant(service, forged)).status).toBe(400);
      expect(await watch.stop()).toEqual({ evalsha: refreshes });
    });

    it("a refresh at /auth/refresh of the login client's family is one script call and no GET", async () => {
      const login = await passwordLogin(service);
      let token = (await request(service.callback).post('/auth/refresh').send({ refresh_token: login.body.refresh_token }).expect(200)).body
        .refresh_token as string;
      const watch = await watchCommands(nodes);
      const refreshes = 3;
      for (let index = 0; index < refreshes; index += 1) {
        const response = await request(service.callback).post('/auth/refresh').send({ refresh_token: token }).expect(200);
        token = response.body.refresh_token;
      }
      expect(await watch.stop()).toEqual({ evalsha: refreshes });
    });
  });
}

describeRoundTrips('single Redis', async () => {
  const redis: TestRedis = await startTestRedis();
  return { env: { REDIS_URL: redis.url }, nodes: [redis.client], stop: () => redis.stop() };
});

describeRoundTrips('Redis Cluster', async () => {
  const cluster: TestRedisCluster = await startTestRedisCluster();
  const nodes = cluster.nodes.map(({ host, port }) => new Redis({ host, port }));
  return {
    env: { REDIS_CLUSTER_NODES: cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',') },
    nodes,
    stop: async () => {
      for (const node of nodes) node.disconnect();
      await cluster.stop();
    },
  };
});
