/**
 * The store methods the admin API added (src/stores/types.ts), run against every adapter:
 * ClientStore list/update/delete and UserStore listByEmailPrefix on memory and MongoDB,
 * FamilyStore listByClient and countLive on memory, Redis and a Redis Cluster (SCAN over each master).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { manualClock, systemClock } from '../../src/clock.js';
import { cryptoRandom } from '../../src/random.js';
import { createMemoryClientStore } from '../../src/stores/memory/clients.js';
import { createMemoryFamilyStore } from '../../src/stores/memory/families.js';
import { createMemoryUserStore } from '../../src/stores/memory/users.js';
import { closeRedis, connectRedis, createRedisClient, type RedisClient } from '../../src/stores/redis/connection.js';
import { createRedisFamilyStore } from '../../src/stores/redis/families.js';
import type { ClientStore, FamilyStore, NewClient, UserStore } from '../../src/stores/types.js';
import { createRefreshTokens } from '../../src/tokens/refresh-token.js';
import { openTestMongoStores } from '../support/mongo.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

type Harness<S> = { store: S; close(): Promise<void> };
const clock = () => manualClock(Date.UTC(2026, 2, 1, 12, 0, 0));

const client = (clientId: string, overrides: Partial<NewClient> = {}): NewClient => ({
  clientId,
  name: `Client ${clientId}`,
  type: 'confidential',
  firstParty: false,
  grantTypes: ['client_credentials'],
  scopes: ['read'],
  audiences: [],
  permissions: [],
  cookieMode: false,
  secretHash: 'a'.repeat(64),
  ...overrides,
});

function describeClientStore(name: string, open: () => Promise<Harness<ClientStore>>) {
  describe(`ClientStore admin methods: ${name}`, () => {
    let harness: Harness<ClientStore>;
    beforeAll(async () => {
      harness = await open();
      for (const id of ['delta', 'alpha', 'charlie', 'bravo', 'echo']) await harness.store.create(client(id));
    });
    afterAll(async () => {
      await harness?.close();
    });

    it('lists in client_id order, a page at a time after a cursor', async () => {
      const { store } = harness;
      const ids = async (page: Parameters<ClientStore['list']>[0]) => (await store.list(page)).map((record) => record.clientId);
      expect(await ids({ limit: 10 })).toEqual(['alpha', 'bravo', 'charlie', 'delta', 'echo']);
      expect(await ids({ limit: 2 })).toEqual(['alpha', 'bravo']);
      expect(await ids({ limit: 2, after: 'bravo' })).toEqual(['charlie', 'delta']);
      expect(await ids({ limit: 2, after: 'bz' })).toEqual(['charlie', 'delta']);
      expect(await ids({ limit: 2, after: 'echo' })).toEqual([]);
      expect(await ids({ limit: 0 })).toEqual([]);
      expect((await store.list({ limit: 1 }))[0]).toEqual(await store.findById('alpha'));
    });

    it('updates the given fields only, keeping id, type, permissions and creation time', async () => {
      const { store } = harness;
      const before = (await store.findById('charlie'))!;
      const updated = await store.update('charlie', {
        name: 'Renamed',
        scopes: ['write'],
        redirectUris: ['https://x.example/cb'],
        requirePar: true,
        secretHash: 'b'.repeat(64),
      });
      expect(updated).toEqual({
        ...before,
        name: 'Renamed',
        scopes: ['write'],
        redirectUris: ['https://x.example/cb'],
        requirePar: true,
        secretHash: 'b'.repeat(64),
      });
      expect(await store.findById('charlie')).toEqual(updated);
      expect(await store.update('charlie', {})).toEqual(updated);
      expect(await store.update('nobody', { name: 'x' })).toBeNull();
      expect(await store.findById('nobody')).toBeNull();
    });

    it('deletes once; the id is free again', async () => {
      const { store } = harness;
      expect(await store.delete('echo')).toBe(true);
      expect(await store.findById('echo')).toBeNull();
      expect(await store.delete('echo')).toBe(false);
      expect((await store.list({ limit: 10 })).map((record) => record.clientId)).not.toContain('echo');
      await store.create(client('echo', { name: 'Again' }));
      expect((await store.findById('echo'))?.name).toBe('Again');
    });
  });
}

function describeUserStore(name: string, open: () => Promise<Harness<UserStore>>) {
  describe(`UserStore.listByEmailPrefix: ${name}`, () => {
    let harness: Harness<UserStore>;
    beforeAll(async () => {
      harness = await open();
      for (const email of ['bob@b.org', 'ann@a.org', 'anna@a.org', 'an.x@c.org', 'zed@z.org', 'an+1@a.org'])
        await harness.store.create({ email, passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA' });
    });
    afterAll(async () => {
      await harness?.close();
    });

    it('lists the emails starting with the prefix, in order, a page at a time; nothing in the prefix is a pattern', async () => {
      const { store } = harness;
      const emails = async (prefix: string, page: { limit: number; after?: string }) => (await store.listByEmailPrefix(prefix, page)).map((user) => user.email);
      expect(await emails('an', { limit: 10 })).toEqual(['an+1@a.org', 'an.x@c.org', 'ann@a.org', 'anna@a.org']);
      expect(await emails('an', { limit: 2 })).toEqual(['an+1@a.org', 'an.x@c.org']);
      expect(await emails('an', { limit: 2, after: 'an.x@c.org' })).toEqual(['ann@a.org', 'anna@a.org']);
      expect(await emails('an', { limit: 2, after: 'anna@a.org' })).toEqual([]);
      // A cursor before the prefix's range starts at the prefix.
      expect(await emails('an', { limit: 1, after: 'a' })).toEqual(['an+1@a.org']);
      expect(await emails('', { limit: 10 })).toEqual(['an+1@a.org', 'an.x@c.org', 'ann@a.org', 'anna@a.org', 'bob@b.org', 'zed@z.org']);
      expect(await emails('an.', { limit: 10 })).toEqual(['an.x@c.org']);
      expect(await emails('.*', { limit: 10 })).toEqual([]);
      expect(await emails('^a', { limit: 10 })).toEqual([]);
      expect(await emails('an', { limit: 0 })).toEqual([]);
      const [first] = await store.listByEmailPrefix('bob', { limit: 1 });
      expect(first).toEqual(await store.findByEmail('bob@b.org'));
      expect(JSON.stringify(first)).not.toContain('argon2');
    });
  });
}

function describeFamilyStore(name: string, open: () => Promise<Harness<FamilyStore>>) {
  describe(`FamilyStore.listByClient: ${name}`, () => {
    let harness: Harness<FamilyStore>;
    beforeAll(async () => {
      harness = await open();
    }, 60_000);
    afterAll(async () => {
      await harness?.close();
    });

    it('finds every live family of a client, across subjects (and slots), and none revoked', async () => {
      const { store } = harness;
      const tokens = createRefreshTokens({ secret: 's'.repeat(40), random: cryptoRandom, families: store });
      const made = { gone: [] as string[], kept: [] as string[], other: [] as string[] };
      for (let i = 0; i < 30; i++) {
        const grant = { subject: `user-${i}`, scope: 'read', audience: 'https://api.example.org' };
        made.gone.push((await tokens.create({ ...grant, clientId: 'doomed' }, {})).family.id);
        made.other.push((await tokens.create({ ...grant, clientId: 'other' }, {})).family.id);
      }
      const revoked = made.gone.splice(0, 3);
      for (const id of revoked) await store.revoke(id);
      const found = await store.listByClient('doomed');
      expect(found.map((family) => family.id).sort()).toEqual([...made.gone].sort());
      expect(found.every((family) => family.clientId === 'doomed')).toBe(true);
      expect(found[0]).toEqual(await store.get(found[0]!.id));
      expect(await store.listByClient('nobody')).toEqual([]);
      expect((await store.listByClient('other')).length).toBe(30);
    });

    it('counts the live families (the gauge): exactly with room to look at every key, else an estimate from a sample', async () => {
      // The 57 live families the test above left (3 of its 60 were revoked).
      expect(await harness.store.countLive()).toEqual({ count: 57, exact: true });
      // About 120 keys in all (families, revoked markers, two indexes per subject): a sample of
      // 60 per master estimates the share of family keys; far off only with a broken estimator.
      const sampled = await harness.store.countLive(60);
      expect(sampled.count).toBeGreaterThanOrEqual(57 / 2);
      expect(sampled.count).toBeLessThanOrEqual(57 * 2);
    });
  });
}

const mongo = <S>(pick: (stores: Awaited<ReturnType<typeof openTestMongoStores>>['stores']) => S, name: string) =>
  async function open(): Promise<Harness<S>> {
    const { stores, close } = await openTestMongoStores(inject('mongoUri'), `${import.meta.url}-${name}`, clock());
    return { store: pick(stores), close };
  };

describeClientStore('memory', async () => ({ store: createMemoryClientStore({ clock: clock() }), close: async () => undefined }));
describeClientStore(
  'mongo',
  mongo((stores) => stores.clients, 'clients'),
);
describeUserStore('memory', async () => ({ store: createMemoryUserStore({ clock: clock() }), close: async () => undefined }));
describeUserStore(
  'mongo',
  mongo((stores) => stores.users, 'users'),
);

const familyOptions = { clock: systemClock, refreshTokenTtl: 3600, familyMaxTtl: 86400, reuseGrace: 0, revokedMarkerTtl: 960, maxFamiliesPerSubject: 100 };
describeFamilyStore('memory', async () => ({ store: createMemoryFamilyStore(familyOptions), close: async () => undefined }));

async function redisFamilies(redis: RedisClient, stop: () => Promise<void>): Promise<Harness<FamilyStore>> {
  await connectRedis(redis);
  return {
    store: createRedisFamilyStore({ ...familyOptions, redis }),
    async close() {
      await closeRedis(redis);
      await stop();
    },
  };
}
describeFamilyStore('redis', async () => {
  const server: TestRedis = await startTestRedis();
  return redisFamilies(createRedisClient({ url: server.url }), () => server.stop());
});
describeFamilyStore('redis cluster', async () => {
  const cluster: TestRedisCluster = await startTestRedisCluster();
  return redisFamilies(createRedisClient({ clusterNodes: cluster.nodes }), () => cluster.stop());
});
