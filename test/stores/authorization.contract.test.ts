/**
 * One contract for authorization codes, pushed authorization requests and browser sign-in
 * sessions, run against the in-memory adapters, a real standalone redis-server and a real
 * three-master Redis Cluster. The memory adapters follow a manual clock, the Redis ones
 * Redis's own clock (TIME in the scripts): `pass(ms)` moves the first and waits out the
 * second, so expiry tests use lifetimes of a second or so.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { cryptoRandom } from '../../src/random.js';
import { createMemoryAuthorizationCodeStore } from '../../src/stores/memory/authorization-codes.js';
import { createMemoryBrowserSessionStore } from '../../src/stores/memory/browser-sessions.js';
import { createMemoryPushedRequestStore } from '../../src/stores/memory/pushed-requests.js';
import { createRedisAuthorizationCodeStore } from '../../src/stores/redis/authorization-codes.js';
import { createRedisBrowserSessionStore } from '../../src/stores/redis/browser-sessions.js';
import { closeRedis, connectRedis, createRedisClient, type RedisClient } from '../../src/stores/redis/connection.js';
import { createRedisPushedRequestStore } from '../../src/stores/redis/pushed-requests.js';
import {
  DuplicateKeyError,
  type AuthorizationCodeRecord,
  type AuthorizationCodeStore,
  type BrowserSessionStore,
  type PushedRequestStore,
} from '../../src/stores/types.js';
import { startTestRedisCluster } from '../support/redis-cluster.js';
import { startTestRedis } from '../support/redis.js';

interface SessionLimits {
  idleMs: number;
  maxMs: number;
}

interface Backend {
  readonly name: string;
  start(): Promise<void>;
  codes(consumedRetentionMs?: number): AuthorizationCodeStore;
  requests(): PushedRequestStore;
  sessions(limits: SessionLimits): BrowserSessionStore;
  /** Lets `ms` of the store's time pass. */
  pass(ms: number): Promise<void>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

function memoryBackend(): Backend {
  const clock = manualClock(Date.now());
  return {
    name: 'memory',
    start: async () => undefined,
    codes: (consumedRetentionMs) => createMemoryAuthorizationCodeStore({ clock, ...(consumedRetentionMs ? { consumedRetentionMs } : {}) }),
    requests: () => createMemoryPushedRequestStore({ clock }),
    sessions: (limits) => createMemoryBrowserSessionStore({ clock, random: cryptoRandom, ...limits }),
    pass: async (ms) => clock.advance(ms),
    reset: async () => undefined,
    stop: async () => undefined,
  };
}

function redisBackend(name: string, connect: () => Promise<{ client: RedisClient; flush(): Promise<void>; stop(): Promise<void> }>): Backend {
  let server: Awaited<ReturnType<typeof connect>> | undefined;
  const redis = (): RedisClient => {
    if (!server) throw new Error(`${name} not started`);
    return server.client;
  };
  return {
    name,
    async start() {
      server = await connect();
    },
    codes: (consumedRetentionMs) => createRedisAuthorizationCodeStore({ redis: redis(), ...(consumedRetentionMs ? { consumedRetentionMs } : {}) }),
    requests: () => createRedisPushedRequestStore({ redis: redis() }),
    sessions: (limits) => createRedisBrowserSessionStore({ redis: redis(), random: cryptoRandom, ...limits }),
    pass: async (ms) => void (await sleep(ms)),
    reset: async () => server?.flush(),
    stop: async () => server?.stop(),
  };
}

const standalone = redisBackend('redis standalone', async () => {
  const redis = await startTestRedis();
  const client = createRedisClient({ url: redis.url });
  await connectRedis(client);
  return {
    client,
    flush: () => redis.flush(),
    stop: async () => {
      await closeRedis(client);
      await redis.stop();
    },
  };
});

const cluster = redisBackend('redis cluster (3 masters)', async () => {
  const redis = await startTestRedisCluster();
  const client = createRedisClient({ clusterNodes: redis.nodes });
  await connectRedis(client);
  return {
    client,
    flush: () => redis.flush(),
    stop: async () => {
      await closeRedis(client);
      await redis.stop();
    },
  };
});

const hash = (): string => cryptoRandom.token(32);
const record: AuthorizationCodeRecord = {
  clientId: 'demo-spa',
  redirectUri: 'http://127.0.0.1:5173/callback',
  codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  userId: 'user-1',
  scope: 'profile email',
  audience: 'https://api.example',
  authTime: Date.UTC(2026, 0, 1, 12, 0, 0, 123),
};
const issued = { familyId: 'fam-1234567890abcdef', accessTokenJti: 'jti-1', accessTokenExpiresAt: Date.UTC(2026, 0, 1, 12, 15) };
const SESSIONS = { idleMs: 3_600_000, maxMs: 86_400_000 };

describe.each([memoryBackend(), standalone, cluster])('$name', (backend) => {
  beforeAll(() => backend.start());
  afterAll(() => backend.stop());
  afterEach(() => backend.reset());

  describe('AuthorizationCodeStore contract', () => {
    it('hands a live code out once with its record; a second presentation is reuse, with what was recorded as issued', async () => {
      const codes = backend.codes();
      const code = hash();
      await codes.save(code, record, 60_000);
      expect(await codes.consume(code)).toEqual({ outcome: 'consumed', record });
      expect(await codes.recordIssued(code, issued)).toBe('recorded');
      expect(await codes.consume(code)).toEqual({ outcome: 'reused', record, issued });
      expect(await codes.consume(code)).toEqual({ outcome: 'reused', record, issued });
    });

    it('tells the first redeemer when a second presentation came before it recorded what it issued', async () => {
      const codes = backend.codes();
      const code = hash();
      await codes.save(code, record, 60_000);
      expect((await codes.consume(code)).outcome).toBe('consumed');
      expect(await codes.consume(code)).toEqual({ outcome: 'reused', record });
      const withoutFamily = { accessTokenJti: 'jti-2', accessTokenExpiresAt: issued.accessTokenExpiresAt };
      expect(await codes.recordIssued(code, withoutFamily)).toBe('reused');
      expect(await codes.consume(code)).toEqual({ outcome: 'reused', record, issued: withoutFamily });
    });

    it('records issuance once, only for a consumed code', async () => {
      const codes = backend.codes();
      const code = hash();
      await codes.save(code, record, 60_000);
      expect(await codes.recordIssued(code, issued)).toBe('unknown');
      expect(await codes.recordIssued(hash(), issued)).toBe('unknown');
      expect((await codes.consume(code)).outcome).toBe('consumed');
      expect(await codes.recordIssued(code, issued)).toBe('recorded');
      expect(await codes.recordIssued(code, { ...issued, familyId: 'another-family-id' })).toBe('unknown');
      expect(await codes.consume(code)).toEqual({ outcome: 'reused', record, issued });
    });

    it('a code presented by another client is invalid and changes nothing, before or after it was consumed', async () => {
      const codes = backend.codes();
      const code = hash();
      await codes.save(code, record, 60_000);
      expect(await codes.consume(code, { clientId: 'attacker' })).toEqual({ outcome: 'invalid' });
      expect(await codes.consume(code, { clientId: 'demo-spa' })).toEqual({ outcome: 'consumed', record });
      expect(await codes.consume(code, { clientId: 'attacker' })).toEqual({ outcome: 'invalid' });
      // Not marked reused by the other client's presentation:
      expect(await codes.recordIssued(code, issued)).toBe('recorded');
    });

    it('an unknown, malformed or expired code is invalid; a consumed one reports reuse until expiry + retention', async () => {
      const codes = backend.codes(1000);
      expect(await codes.consume(hash())).toEqual({ outcome: 'invalid' });
      expect(await codes.consume('not a hash')).toEqual({ outcome: 'invalid' });
      const expiring = hash();
      const consumed = hash();
      await codes.save(expiring, record, 500);
      await codes.save(consumed, record, 500);
      expect((await codes.consume(consumed)).outcome).toBe('consumed');
      await backend.pass(700);
      expect(await codes.consume(expiring)).toEqual({ outcome: 'invalid' });
      expect((await codes.consume(consumed)).outcome).toBe('reused');
      await backend.pass(1000);
      expect(await codes.consume(consumed)).toEqual({ outcome: 'invalid' });
      expect(await codes.consume(expiring)).toEqual({ outcome: 'invalid' });
    });

    it('refuses a duplicate hash, a malformed hash, a bad record and a bad lifetime', async () => {
      const codes = backend.codes();
      const code = hash();
      await codes.save(code, record, 60_000);
      await expect(codes.save(code, record, 60_000)).rejects.toThrow(DuplicateKeyError);
      await expect(codes.save('short', record, 60_000)).rejects.toThrow(TypeError);
      await expect(codes.save(hash(), { ...record, codeChallenge: '' }, 60_000)).rejects.toThrow(TypeError);
      await expect(codes.save(hash(), record, 0)).rejects.toThrow(RangeError);
      await expect(codes.recordIssued(code, { accessTokenJti: '', accessTokenExpiresAt: 1 })).rejects.toThrow(TypeError);
    });

    it('of 50 concurrent presentations of one code exactly one is consumed, the 49 others are reuse', async () => {
      const codes = backend.codes();
      const code = hash();
      await codes.save(code, record, 60_000);
      const outcomes = await Promise.all(Array.from({ length: 50 }, () => codes.consume(code)));
      expect(outcomes.filter((result) => result.outcome === 'consumed')).toHaveLength(1);
      expect(outcomes.filter((result) => result.outcome === 'reused')).toHaveLength(49);
    });
  });

  describe('PushedRequestStore contract', () => {
    const parameters = { response_type: 'code', redirect_uri: 'http://127.0.0.1:5173/callback', state: 'xyz "<>" é', scope: 'profile' };

    it('hands the pushed parameters out once, to the client that pushed them', async () => {
      const requests = backend.requests();
      const id = hash();
      await requests.save(id, 'demo-spa', parameters, 60_000);
      expect(await requests.take(id, 'other-client')).toBeNull();
      expect(await requests.take(id, 'demo-spa')).toEqual(parameters);
      expect(await requests.take(id, 'demo-spa')).toBeNull();
      expect(await requests.take(hash(), 'demo-spa')).toBeNull();
      expect(await requests.take('../etc', 'demo-spa')).toBeNull();
    });

    it('forgets a request when its lifetime ends', async () => {
      const requests = backend.requests();
      const id = hash();
      const kept = hash();
      await requests.save(id, 'demo-spa', parameters, 400);
      await requests.save(kept, 'demo-spa', parameters, 60_000);
      await backend.pass(600);
      expect(await requests.take(id, 'demo-spa')).toBeNull();
      expect(await requests.take(kept, 'demo-spa')).toEqual(parameters);
    });

    it('refuses a duplicate id, a malformed id, non-string parameters and a bad lifetime', async () => {
      const requests = backend.requests();
      const id = hash();
      await requests.save(id, 'demo-spa', parameters, 60_000);
      await expect(requests.save(id, 'demo-spa', parameters, 60_000)).rejects.toThrow(DuplicateKeyError);
      await expect(requests.save('x', 'demo-spa', parameters, 60_000)).rejects.toThrow(TypeError);
      await expect(requests.save(hash(), 'demo-spa', { scope: 1 } as unknown as Record<string, string>, 60_000)).rejects.toThrow(TypeError);
      await expect(requests.save(hash(), 'demo-spa', parameters, 1.5)).rejects.toThrow(RangeError);
    });

    it('of 20 concurrent takes of one request exactly one gets it', async () => {
      const requests = backend.requests();
      const id = hash();
      await requests.save(id, 'demo-spa', parameters, 60_000);
      const taken = await Promise.all(Array.from({ length: 20 }, () => requests.take(id, 'demo-spa')));
      expect(taken.filter((entry) => entry !== null)).toEqual([parameters]);
    });
  });

  describe('BrowserSessionStore contract', () => {
    const newSession = (userId = 'user-1') => ({ userId, authTime: Date.UTC(2026, 0, 1, 12), amr: ['pwd'] });

    it('creates a session opened only by its exact cookie value', async () => {
      const sessions = backend.sessions(SESSIONS);
      const { session, cookieValue } = await sessions.create(newSession());
      expect(cookieValue).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
      expect(cookieValue.startsWith(`${session.id}.`)).toBe(true);
      expect(session).toMatchObject({ ...newSession(), lastSeenAt: session.createdAt, expiresAt: session.createdAt + SESSIONS.maxMs });
      expect(await sessions.get(cookieValue)).toEqual(session);
      const [, secret] = cookieValue.split('.');
      const forged = `${session.id}.${secret!.startsWith('A') ? 'B' : 'A'}${secret!.slice(1)}`;
      expect(await sessions.get(forged)).toBeNull();
      expect(await sessions.touch(forged)).toBeNull();
      expect(await sessions.get(session.id)).toBeNull();
      expect(await sessions.get('')).toBeNull();
    });

    it('touch records the use and extends the idle lifetime, never past the absolute one', async () => {
      // Real time on Redis (TIME): every "still alive" check has 1200 ms or more of margin, and
      // every "gone" check is only made surer by a slow machine (it failed in CI with 100 ms,
      // and under a load of 10 on 2 cores with 800 ms, on a Cluster).
      const sessions = backend.sessions({ idleMs: 3000, maxMs: 6000 });
      const idle = await sessions.create(newSession());
      const touched = await sessions.create(newSession());
      await backend.pass(1800);
      const after = await sessions.touch(touched.cookieValue);
      expect(after?.lastSeenAt).toBeGreaterThanOrEqual(touched.session.createdAt + 1800);
      expect(await sessions.get(touched.cookieValue)).toEqual(after);
      await backend.pass(1500);
      expect(await sessions.get(idle.cookieValue)).toBeNull();
      expect(await sessions.touch(touched.cookieValue)).not.toBeNull();
      await backend.pass(1500);
      // Uncapped, this touch would keep it until 7800 ms; the absolute lifetime ends it at 6000.
      expect(await sessions.touch(touched.cookieValue)).not.toBeNull();
      await backend.pass(1500);
      // Touched within its idle lifetime each time, but past the absolute one.
      expect(await sessions.get(touched.cookieValue)).toBeNull();
      expect(await sessions.touch(touched.cookieValue)).toBeNull();
    });

    it("lists a user's sessions most recently seen first, and ends one by its public id", async () => {
      const sessions = backend.sessions(SESSIONS);
      const first = await sessions.create(newSession());
      await backend.pass(5);
      const second = await sessions.create(newSession());
      await sessions.create(newSession('user-2'));
      await backend.pass(5);
      await sessions.touch(first.cookieValue);
      expect((await sessions.listByUser('user-1')).map((session) => session.id)).toEqual([first.session.id, second.session.id]);
      expect(await sessions.delete(first.session.id)).toBe(true);
      expect(await sessions.delete(first.session.id)).toBe(false);
      expect(await sessions.delete('not-an-id')).toBe(false);
      expect(await sessions.get(first.cookieValue)).toBeNull();
      expect((await sessions.listByUser('user-1')).map((session) => session.id)).toEqual([second.session.id]);
      expect(await sessions.listByUser('nobody')).toEqual([]);
    });

    it("ends all of a user's sessions but the one kept, and no one else's", async () => {
      const sessions = backend.sessions(SESSIONS);
      const kept = await sessions.create(newSession());
      const ended = await Promise.all([sessions.create(newSession()), sessions.create(newSession())]);
      const other = await sessions.create(newSession('user-2'));
      expect(await sessions.deleteAllOfUser('user-1', kept.session.id)).toBe(2);
      for (const { cookieValue } of ended) expect(await sessions.get(cookieValue)).toBeNull();
      expect(await sessions.get(kept.cookieValue)).not.toBeNull();
      expect(await sessions.get(other.cookieValue)).not.toBeNull();
      expect(await sessions.deleteAllOfUser('user-1')).toBe(1);
      expect(await sessions.listByUser('user-1')).toEqual([]);
    });

    it('records each client that received tokens once, in order, without moving the expiry; not for an ended session', async () => {
      const sessions = backend.sessions(SESSIONS);
      const { session, cookieValue } = await sessions.create(newSession());
      expect(session.clientIds).toEqual([]);
      await backend.pass(5);
      expect(await sessions.addClient(session.id, 'rp-b')).toBe(true);
      expect(await sessions.addClient(session.id, 'rp-a')).toBe(true);
      expect(await sessions.addClient(session.id, 'rp-b')).toBe(true);
      const after = await sessions.get(cookieValue);
      expect(after).toEqual({ ...session, clientIds: ['rp-b', 'rp-a'] });
      expect((await sessions.listByUser('user-1')).map((listed) => listed.clientIds)).toEqual([['rp-b', 'rp-a']]);
      // A touch keeps the list.
      expect((await sessions.touch(cookieValue))?.clientIds).toEqual(['rp-b', 'rp-a']);
      await sessions.removeClient(session.id, 'rp-b');
      await sessions.removeClient(session.id, 'rp-z');
      expect((await sessions.get(cookieValue))?.clientIds).toEqual(['rp-a']);
      await sessions.removeClient(session.id, 'rp-a');
      expect((await sessions.get(cookieValue))?.clientIds).toEqual([]);
      await sessions.delete(session.id);
      expect(await sessions.addClient(session.id, 'rp-c')).toBe(false);
      expect(await sessions.addClient('not-an-id', 'rp-c')).toBe(false);
      await sessions.removeClient(session.id, 'rp-c');
      expect(await sessions.get(cookieValue)).toBeNull();
    });

    it('refuses a session without a user, an auth time or a list of methods', async () => {
      const sessions = backend.sessions(SESSIONS);
      await expect(sessions.create({ ...newSession(), userId: '' })).rejects.toThrow(TypeError);
      await expect(sessions.create({ ...newSession(), authTime: Number.NaN })).rejects.toThrow(TypeError);
      await expect(sessions.create({ ...newSession(), amr: [''] })).rejects.toThrow(TypeError);
    });
  });
});

describe('what Redis holds', () => {
  it('a dump of Redis holds no session cookie value, only its hash', async () => {
    const redis = await startTestRedis();
    const client = createRedisClient({ url: redis.url });
    try {
      await connectRedis(client);
      const sessions = createRedisBrowserSessionStore({ redis: client, random: cryptoRandom, ...SESSIONS });
      const { cookieValue } = await sessions.create({ userId: 'user-1', authTime: 1, amr: ['pwd'] });
      const secret = cookieValue.split('.')[1]!;
      const keys = await redis.client.keys('*');
      const values = await Promise.all(
        keys.map((key) =>
          redis.client.type(key).then((type) => (type === 'string' ? redis.client.get(key) : redis.client.zrange(key, 0, -1).then((ids) => ids.join(' ')))),
        ),
      );
      expect(keys.length).toBeGreaterThan(0);
      expect(values.join('\n')).not.toContain(secret);
      expect(keys.join('\n')).not.toContain(secret);
    } finally {
      await closeRedis(client);
      await redis.stop();
    }
  });
});
