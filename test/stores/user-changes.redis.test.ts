/**
 * The Redis user change feed (src/stores/redis/user-changes.ts) against a real
 * redis-server: a change published on one connection reaches another's subscribers, and a
 * dropped subscription resets them (so caches empty) and is not live until it is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, createRedisClient, type RedisClient } from '../../src/stores/redis/connection.js';
import { createRedisUserChangeFeed } from '../../src/stores/redis/user-changes.js';
import type { UserChangeFeed } from '../../src/stores/types.js';
import { waitFor } from '../support/processes.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
const clients: RedisClient[] = [];
const feeds: UserChangeFeed[] = [];

async function feed(): Promise<UserChangeFeed> {
  const client = createRedisClient({ url: redis.url });
  await connectRedis(client);
  clients.push(client);
  const created = createRedisUserChangeFeed(client);
  feeds.push(created);
  await waitFor(() => created.live(), 5000);
  return created;
}

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await Promise.allSettled(feeds.map((f) => f.close()));
  await Promise.allSettled(clients.map((c) => closeRedis(c)));
  await redis?.stop();
});

describe('Redis user change feed', () => {
  it('tells every instance, and resets its listeners when its subscription drops', async () => {
    const [one, two] = [await feed(), await feed()];
    const seen: string[] = [];
    let resets = 0;
    two.subscribe({ changed: (id) => seen.push(id), reset: () => (resets += 1) });
    await one.publish('user-1');
    await waitFor(() => seen.length === 1, 5000);
    expect(seen).toEqual(['user-1']);

    await redis.client.client('KILL', 'TYPE', 'pubsub');
    await waitFor(() => resets >= 1, 5000);
    // Back once it has subscribed again, with one more reset for what it may have missed.
    await waitFor(() => two.live() && resets >= 2, 5000);
    await one.publish('user-2');
    await waitFor(() => seen.length === 2, 5000);
    expect(seen).toEqual(['user-1', 'user-2']);
  });
});

describe('Redis user change feed on a Cluster', () => {
  let cluster: TestRedisCluster;
  const ours: RedisClient[] = [];
  const ourFeeds: UserChangeFeed[] = [];
  beforeAll(async () => {
    cluster = await startTestRedisCluster();
  }, 30_000);
  afterAll(async () => {
    await Promise.allSettled(ourFeeds.map((f) => f.close()));
    await Promise.allSettled(ours.map((c) => closeRedis(c)));
    await cluster?.stop();
  });

  it('tells every instance, whichever node each subscribed on', async () => {
    const feeds: UserChangeFeed[] = [];
    for (let index = 0; index < 2; index += 1) {
      const client = createRedisClient({ clusterNodes: [cluster.nodes[index]!] });
      await connectRedis(client);
      ours.push(client);
      const created = createRedisUserChangeFeed(client);
      ourFeeds.push(created);
      await waitFor(() => created.live(), 10_000);
      feeds.push(created);
    }
    const seen: string[] = [];
    feeds[1]!.subscribe({ changed: (id) => seen.push(id), reset: () => undefined });
    await feeds[0]!.publish('user-9');
    await waitFor(() => seen.length === 1, 5000);
    expect(seen).toEqual(['user-9']);
  });
});
