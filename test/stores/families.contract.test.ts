/**
 * One contract for refresh-token families and the access-token denylist, run against the
 * in-memory adapter, a real standalone redis-server and a real three-master Redis Cluster.
 * Time is a manual clock started at the real time (Redis TTLs stay meaningful) and moved
 * by hand; both adapters decide expiry by that clock.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { cryptoRandom } from '../../src/random.js';
import type { FamilyStoreOptions } from '../../src/stores/family-policy.js';
import { createMemoryDenylist } from '../../src/stores/memory/denylist.js';
import { createMemoryFamilyStore } from '../../src/stores/memory/families.js';
import type { Redis } from 'ioredis';
import { closeRedis, connectRedis, createRedisClient, type RedisClient } from '../../src/stores/redis/connection.js';
import { createRedisDenylist } from '../../src/stores/redis/denylist.js';
import { createRedisFamilyStore } from '../../src/stores/redis/families.js';
import { FamilyRevokedError, SignInEndedError, type AccessTokenDenylist, type Family, type FamilyGrant, type FamilyStore } from '../../src/stores/types.js';
import { createRefreshTokenCodec } from '../../src/tokens/refresh-token.js';
import { withTokens, type TokenFamilies } from './families.helpers.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const SECRET = 'contract-suite-refresh-token-secret-0123456789';
const SECOND = 1000;

type Clock = ReturnType<typeof manualClock>;
type StoreSettings = Omit<FamilyStoreOptions, 'clock'>;

interface Backend {
  readonly name: string;
  start(): Promise<void>;
  families(clock: Clock, settings: StoreSettings): FamilyStore;
  denylist(clock: Clock): AccessTokenDenylist;
  reset(): Promise<void>;
  /**
   * Redis times the grace window with its own clock (see the ROTATE script), which the
   * manual clock does not move: moves every stored rotation that far into the past instead.
   */
  rewindRotations(ms: number): Promise<void>;
  /** Scripts Redis has run so far (INFO commandstats, every server); undefined for memory. */
  scriptCalls(): Promise<number | undefined>;
  /** GETs Redis has answered so far (INFO commandstats, every server); undefined for memory. */
  getCalls(): Promise<number | undefined>;
  stop(): Promise<void>;
}

function memoryBackend(): Backend {
  return {
    name: 'memory',
    start: async () => undefined,
    families: (clock, settings) => createMemoryFamilyStore({ clock, ...settings }),
    denylist: (clock) => createMemoryDenylist({ clock }),
    reset: async () => undefined,
    rewindRotations: async () => undefined,
    scriptCalls: async () => undefined,
    getCalls: async () => undefined,
    stop: async () => undefined,
  };
}

interface RedisServer {
  readonly client: RedisClient;
  /** A connection to each server (each master of a Cluster), for white-box edits. */
  admins(): Redis[];
  flush(): Promise<void>;
  stop(): Promise<void>;
}

function redisBackend(name: string, connect: () => Promise<RedisServer>): Backend {
  let server: Awaited<ReturnType<typeof connect>> | undefined;
  const connected = (): RedisClient => {
    if (!server) throw new Error(`${name} not started`);
    return server.client;
  };
  async function commandCalls(pattern: RegExp): Promise<number> {
    let calls = 0;
    for (const admin of server?.admins() ?? []) {
      const stats = await admin.info('commandstats');
      for (const match of stats.matchAll(pattern)) calls += Number(match[1]);
    }
    return calls;
  }
  return {
    name,
    async start() {
      server = await connect();
    },
    families: (clock, settings) => createRedisFamilyStore({ redis: connected(), clock, ...settings }),
    denylist: (clock) => createRedisDenylist({ redis: connected(), clock }),
    reset: async () => server?.flush(),
    async rewindRotations(ms) {
      for (const admin of server?.admins() ?? []) {
        for (const key of await admin.keys('rt:fam:*')) {
          if ((await admin.type(key)) !== 'string') continue;
          const stored = JSON.parse((await admin.get(key)) ?? '{}') as { pt?: number };
          if (typeof stored.pt !== 'number') continue;
          stored.pt -= ms;
          await admin.set(key, JSON.stringify(stored), 'KEEPTTL');
        }
      }
    },
    scriptCalls: () => commandCalls(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm),
    getCalls: () => commandCalls(/^cmdstat_get:calls=(\d+)/gm),
    stop: async () => server?.stop(),
  };
}

const standalone = redisBackend('redis standalone', async () => {
  const redis: TestRedis = await startTestRedis();
  const client = createRedisClient({ url: redis.url });
  await connectRedis(client);
  return {
    client,
    admins: () => [redis.client],
    flush: () => redis.flush(),
    stop: async () => {
      await closeRedis(client);
      await redis.stop();
    },
  };
});

const cluster = redisBackend('redis cluster (3 masters)', async () => {
  const redis: TestRedisCluster = await startTestRedisCluster();
  const client = createRedisClient({ clusterNodes: redis.nodes });
  await connectRedis(client);
  const admin = redis.client();
  await admin.ping(); // the admin client knows the masters once it is ready
  return {
    client,
    admins: () => admin.nodes('master'),
    flush: () => redis.flush(),
    stop: async () => {
      await closeRedis(client);
      await redis.stop();
    },
  };
});

const DEFAULTS: StoreSettings = { refreshTokenTtl: 3600, familyMaxTtl: 4 * 3600, reuseGrace: 0, revokedMarkerTtl: 960 };
const grant = (subject = 'user-1', clientId = 'app'): FamilyGrant => ({ subject, clientId, scope: 'openid profile', audience: 'https://api.example' });
const context = { userAgent: 'Mozilla/5.0 test', ip: '203.0.113.7' };

describe.each([memoryBackend(), standalone, cluster])('$name', (backend) => {
  let clock: Clock;
  beforeAll(async () => {
    await backend.start();
    clock = manualClock(Date.now());
  });
  afterAll(() => backend.stop());
  afterEach(() => backend.reset());

  describe('FamilyStore contract', () => {
    const store = (settings: Partial<StoreSettings> = {}): TokenFamilies => withTokens(backend.families(clock, { ...DEFAULTS, ...settings }), SECRET);

    /** Time passes: for the families' expiry (the manual clock) and for their grace windows. */
    async function elapse(ms: number): Promise<void> {
      clock.advance(ms);
      await backend.rewindRotations(ms);
    }

    async function rotated(families: TokenFamilies, token: string) {
      const result = await families.rotate(token, context);
      if (result.outcome !== 'rotated') throw new Error(`expected rotated, got ${result.outcome}`);
      return result;
    }

    it('refuses a grant without a subject: a family nobody owns would escape logout-all', async () => {
      await expect(store().create({ ...grant(), subject: '' }, context)).rejects.toThrow(TypeError);
    });

    describe('the bare store: ids and hashes, no secret', () => {
      const hash = () => cryptoRandom.token(32); // shaped like a SHA-256, base64url
      const newFamily = (id = createRefreshTokenCodec({ secret: SECRET, random: cryptoRandom }).newFamilyId(grant().subject), tokenHash = hash()) => ({
        ...grant(),
        id,
        tokenHash,
      });

      it('creates from an id and a hash, and rotates on hashes: current, then the next one', async () => {
        const { store: families } = store();
        const created = newFamily();
        const { endedByCap, ...family } = await families.create(created, context);
        expect(endedByCap).toEqual([]);
        expect(family).toMatchObject({ ...grant(), id: created.id });
        expect(await families.current(created.id, created.tokenHash)).toEqual(family);
        const next = hash();
        expect(await families.rotate(created.id, { presented: created.tokenHash, next }, context)).toMatchObject({
          outcome: 'rotated',
          family: { id: created.id },
        });
        expect(await families.current(created.id, created.tokenHash)).toBeNull();
        expect(await families.current(created.id, next)).toMatchObject({ id: created.id });
      });

      it('keeps the OpenID Connect sign-in of a family (sid, auth time, amr) through get and rotation', async () => {
        const { store: families } = store();
        const signIn = { sid: 'browser-session-1', authTime: 1_700_000_000_123, amr: ['pwd'] };
        const created = { ...newFamily(), signIn };
        expect(await families.create(created, context)).toMatchObject({ signIn });
        expect(await families.get(created.id)).toMatchObject({ signIn });
        const rotation = await families.rotate(created.id, { presented: created.tokenHash, next: hash() }, context);
        expect(rotation).toMatchObject({ outcome: 'rotated', family: { signIn } });
        const plain = newFamily();
        await families.create(plain, context);
        expect(await families.get(plain.id)).not.toHaveProperty('signIn');
      });

      it('takes any other hash for a rotated-away token (the caller checked the tag): reuse', async () => {
        const { store: families } = store();
        const created = newFamily();
        await families.create(created, context);
        expect(await families.rotate(created.id, { presented: hash(), next: hash() }, context)).toMatchObject({
          outcome: 'reused',
          familyId: created.id,
          family: { id: created.id },
        });
        expect(await families.isRevoked(created.id)).toBe(true);
      });

      it('inside the grace window the previous hash is a retry only with the current hash as its next: it changes nothing; any other next is reuse', async () => {
        const { store: families } = store({ reuseGrace: 10 });
        const created = newFamily();
        await families.create(created, context);
        const next = hash();
        const first = await families.rotate(created.id, { presented: created.tokenHash, next }, context);
        expect(await families.rotate(created.id, { presented: created.tokenHash, next }, { userAgent: 'other' })).toEqual(first);
        expect(await families.current(created.id, next)).toMatchObject({ id: created.id, userAgent: context.userAgent });
        expect(await families.rotate(created.id, { presented: created.tokenHash, next: hash() }, context)).toMatchObject({
          outcome: 'reused',
          familyId: created.id,
          family: { id: created.id },
        });
        expect(await families.current(created.id, next)).toBeNull();
      });

      it('refuses a malformed id or hash: a bug in the caller, not input', async () => {
        const { store: families } = store();
        await expect(families.create(newFamily('{slot}'), context)).rejects.toThrow(TypeError);
        await expect(families.create(newFamily(undefined, 'not-a-hash'), context)).rejects.toThrow(TypeError);
        const created = newFamily();
        await families.create(created, context);
        await expect(families.rotate(created.id, { presented: created.tokenHash, next: 'short' }, context)).rejects.toThrow(TypeError);
        expect(await families.rotate('{slot}', { presented: hash(), next: hash() }, context)).toEqual({ outcome: 'invalid' });
        expect(await families.current(created.id, created.tokenHash)).toMatchObject({ id: created.id });
      });

      it('a family revoked ahead of its creation is never created; a plain revoke of an absent id leaves no marker', async () => {
        const { store: families } = store({ revokedMarkerTtl: 120 });
        const plain = newFamily();
        expect(await families.revoke(plain.id)).toBe(false);
        expect(await families.isRevoked(plain.id)).toBe(false);
        await families.create(plain, context);

        const ahead = newFamily();
        // Marking an id ahead revokes it (true, so that it is told once); marking it again does not.
        expect(await families.revoke(ahead.id, { ahead: true })).toBe(true);
        expect(await families.revoke(ahead.id, { ahead: true })).toBe(false);
        expect(await families.isRevoked(ahead.id)).toBe(true);
        await expect(families.create(ahead, context)).rejects.toBeInstanceOf(FamilyRevokedError);
        expect(await families.get(ahead.id)).toBeNull();
        expect((await families.listBySubject(ahead.subject)).map(({ id }) => id)).toEqual([plain.id]);
        // On a family that exists, ahead is a plain revoke.
        expect(await families.revoke(plain.id, { ahead: true })).toBe(true);
        expect(await families.get(plain.id)).toBeNull();
        // The marker lives revokedMarkerTtl, as any other.
        clock.advance(120 * SECOND);
        expect(await families.isRevoked(ahead.id)).toBe(false);
        await families.create(ahead, context);
        expect(await families.get(ahead.id)).toMatchObject({ id: ahead.id });
        // A family that idled out is gone: revoked ahead, it is marked as an absent id is.
        clock.advance(3600 * SECOND);
        expect(await families.revoke(ahead.id, { ahead: true })).toBe(true);
        expect(await families.isRevoked(ahead.id)).toBe(true);
        await expect(families.create(ahead, context)).rejects.toBeInstanceOf(FamilyRevokedError);
      });
    });

    it('creates a family whose token is opaque, URL-safe and names the family', async () => {
      const families = store();
      const {
        family: { endedByCap, ...family },
        refreshToken,
      } = await families.create(grant(), context);
      expect(endedByCap).toEqual([]);
      expect(refreshToken).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}$/);
      expect(refreshToken.startsWith(`${family.id}.`)).toBe(true);
      expect(family).toMatchObject({
        ...grant(),
        createdAt: clock.now(),
        lastUsedAt: clock.now(),
        expiresAt: clock.now() + 4 * 3600 * SECOND,
        userAgent: context.userAgent,
        ip: context.ip,
      });
      expect(await families.get(family.id)).toEqual(family);
      expect(await families.inspect(refreshToken)).toEqual(family);
      expect(families.verifiedFamilyId(refreshToken)).toBe(family.id);
      const other = await families.create(grant(), {});
      expect(other.family.id).not.toBe(family.id);
      expect(other.family.userAgent).toBeUndefined();
    });

    it('rotates the current token: new token, last use recorded, old token no longer current', async () => {
      const families = store();
      const { family, refreshToken } = await families.create(grant(), {});
      clock.advance(5 * SECOND);
      const result = await rotated(families, refreshToken);
      expect(result.refreshToken).not.toBe(refreshToken);
      expect(result.family).toMatchObject({ id: family.id, createdAt: family.createdAt, lastUsedAt: clock.now(), expiresAt: family.expiresAt, ...context });
      expect(await families.inspect(refreshToken)).toBeNull();
      expect(await families.inspect(result.refreshToken)).toMatchObject({ id: family.id });
      const again = await rotated(families, result.refreshToken);
      expect(again.refreshToken).not.toBe(result.refreshToken);
    });

    it.each([1, 5, 50])('presenting a token rotated away %i rotation(s) ago is reuse: the whole family dies', async (n) => {
      const families = store();
      const { family, refreshToken } = await families.create(grant(), context);
      const issued = [refreshToken];
      for (let i = 0; i < n; i += 1) issued.push((await rotated(families, issued.at(-1)!)).refreshToken);
      const newest = issued.at(-1)!;
      const stale = issued[Math.floor(n / 2)]!; // one rotated away, from the middle of the chain
      expect(await families.rotate(stale, context)).toMatchObject({ outcome: 'reused', familyId: family.id, family: { id: family.id } });
      expect(await families.rotate(newest, context)).toEqual({ outcome: 'invalid' });
      expect(await families.inspect(newest)).toBeNull();
      expect(await families.get(family.id)).toBeNull();
      expect(await families.isRevoked(family.id)).toBe(true);
      expect(await families.listBySubject('user-1')).toEqual([]);
    });

    it('of 20 concurrent presentations of one token exactly one rotates, and the family is revoked (20 families)', async () => {
      const families = store();
      const created = await Promise.all(Array.from({ length: 20 }, () => families.create(grant(), context)));
      const outcomes = await Promise.all(
        created.map(({ refreshToken }) => Promise.all(Array.from({ length: 20 }, () => families.rotate(refreshToken, context)))),
      );
      for (const [index, results] of outcomes.entries()) {
        const count = (outcome: string) => results.filter((result) => result.outcome === outcome).length;
        expect([count('rotated'), count('reused'), count('invalid')]).toEqual([1, 1, 18]); // the first loser revokes; the rest find no family
        expect(await families.isRevoked(created[index]!.family.id)).toBe(true);
      }
    });

    it('a forged token for a real family is invalid and revokes nothing', async () => {
      const families = store();
      const { family, refreshToken } = await families.create(grant(), context);
      const [, secret, tag] = refreshToken.split('.');
      const randomTag = cryptoRandom.token(16);
      const otherKey = createRefreshTokenCodec({ secret: 'another-server-key-that-we-do-not-hold-000', random: cryptoRandom });
      const forgeries = [
        `${family.id}.${cryptoRandom.token(32)}.${randomTag}`, // guessed secret and tag
        `${family.id}.${cryptoRandom.token(32)}.${tag}`, // real tag, other secret
        `${family.id}.${secret}.${randomTag}`, // real secret, wrong tag
        otherKey.mint(family.id), // valid shape, MAC under another key
      ];
      for (const forged of forgeries) {
        expect(await families.rotate(forged, context)).toEqual({ outcome: 'invalid' });
        expect(await families.inspect(forged)).toBeNull();
        expect(families.verifiedFamilyId(forged)).toBeUndefined();
      }
      expect(await families.isRevoked(family.id)).toBe(false);
      expect(await families.get(family.id)).toMatchObject({ id: family.id });
      await rotated(families, refreshToken);
    });

    it('binds a token to its client: presented for another client it is invalid and changes nothing', async () => {
      const families = store();
      const { family, refreshToken } = await families.create(grant(), context);
      expect(await families.rotate(refreshToken, context, { clientId: 'someone-else' })).toEqual({ outcome: 'invalid' });
      expect(await families.isRevoked(family.id)).toBe(false);
      const result = await families.rotate(refreshToken, context, { clientId: family.clientId });
      expect(result.outcome).toBe('rotated');
      // Even a rotated-away token presented by another client is not taken as reuse.
      expect(await families.rotate(refreshToken, context, { clientId: 'someone-else' })).toEqual({ outcome: 'invalid' });
      expect(await families.get(family.id)).toMatchObject({ id: family.id });
    });

    it('holds a rotation to the request in the same step: scope within the family and the client, audience its own; a refusal changes nothing', async () => {
      const families = store();
      const { family, refreshToken } = await families.create({ ...grant(), scope: 'read write', audience: 'https://api.a.test' }, context);
      const clientId = family.clientId;
      const audiences = ['https://api.a.test'];
      const refusals = [
        [{ scope: ['admin'] }, { outcome: 'refused', reason: 'scope_exceeded', value: 'admin' }],
        [
          { scope: ['read', 'write'], clientScopes: ['read'] },
          { outcome: 'refused', reason: 'scope_lost', value: 'write' },
        ],
        [{ audience: 'https://api.b.test' }, { outcome: 'refused', reason: 'target', value: 'https://api.a.test' }],
      ] as const;
      for (const [expected, refused] of refusals) {
        expect(await families.rotate(refreshToken, context, { clientId, audiences, ...expected })).toEqual(refused);
      }
      // Nothing was used up: the same token still rotates, returning the family it rotated.
      const result = await families.rotate(refreshToken, context, {
        clientId,
        scope: ['read'],
        clientScopes: ['read'],
        audience: 'https://api.a.test',
        audiences,
      });
      expect(result).toMatchObject({
        outcome: 'rotated',
        family: { id: family.id, scope: 'read write', audience: 'https://api.a.test', subject: family.subject },
      });
    });

    it('ends a family whose audience its client may no longer target', async () => {
      const families = store();
      const { family, refreshToken } = await families.create({ ...grant(), audience: 'https://api.a.test' }, context);
      expect(await families.rotate(refreshToken, context, { clientId: family.clientId, audiences: ['https://auth.test'] })).toMatchObject({
        outcome: 'withdrawn',
        familyId: family.id,
        // As it was before it ended: the security event and the back-channel logout need it.
        family: { id: family.id, subject: family.subject, clientId: family.clientId },
      });
      expect(await families.isRevoked(family.id)).toBe(true);
      expect(await families.get(family.id)).toBeNull();
    });

    it('a genuine-looking token for a family that does not exist is invalid', async () => {
      const families = store();
      const ours = createRefreshTokenCodec({ secret: SECRET, random: cryptoRandom });
      const orphan = ours.mint(ours.newFamilyId('user-1'));
      expect(families.verifiedFamilyId(orphan)).toBeDefined();
      expect(await families.rotate(orphan, context)).toEqual({ outcome: 'invalid' });
      expect(await families.inspect(orphan)).toBeNull();
    });

    it('garbage is invalid and never throws', async () => {
      const families = store();
      const { refreshToken } = await families.create(grant(), context);
      const garbage: unknown[] = [
        '',
        '.',
        '..',
        '...',
        'abc',
        'a.b.c',
        `${refreshToken}.`,
        `.${refreshToken}`,
        `${refreshToken}x`,
        refreshToken.replace(/\./g, ''),
        refreshToken.toUpperCase(),
        'x'.repeat(100_000),
        '💥.💥.💥',
        refreshToken.split('.').reverse().join('.'),
        `${refreshToken}\n`,
        `{x}.${refreshToken.split('.').slice(1).join('.')}`,
        undefined,
        null,
        42,
        {},
        ['a'],
      ];
      for (const bad of garbage) {
        expect(await families.rotate(bad as string, context)).toEqual({ outcome: 'invalid' });
        expect(await families.inspect(bad as string)).toBeNull();
        expect(families.verifiedFamilyId(bad as string)).toBeUndefined();
      }
      for (const id of ['', 'short', '{slot}', 'x'.repeat(200), '../../etc', undefined]) {
        expect(await families.get(id as string)).toBeNull();
        expect(await families.revoke(id as string)).toBe(false);
        expect(await families.isRevoked(id as string)).toBe(false);
      }
      await rotated(families, refreshToken);
    });

    it('non-canonical spellings of the current token are invalid, not reuse', async () => {
      const families = store();
      const { family, refreshToken } = await families.create(grant(), context);
      const [id, secret, tag] = refreshToken.split('.') as [string, string, string];
      // The last base64url character of a 22-char tag carries 4 unused bits.
      const last = tag.at(-1)!;
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const twin = alphabet[alphabet.indexOf(last) ^ 1]!;
      expect(await families.rotate(`${id}.${secret}.${tag.slice(0, -1)}${twin}`, context)).toEqual({ outcome: 'invalid' });
      expect(await families.isRevoked(family.id)).toBe(false);
      await rotated(families, refreshToken);
    });

    describe('grace window', () => {
      it('off (0 s): presenting the just-rotated token again at once is reuse', async () => {
        const families = store({ reuseGrace: 0 });
        const { family, refreshToken } = await families.create(grant(), context);
        const next = await rotated(families, refreshToken);
        expect(await families.rotate(refreshToken, context)).toMatchObject({ outcome: 'reused', familyId: family.id, family: { id: family.id } });
        expect(await families.rotate(next.refreshToken, context)).toEqual({ outcome: 'invalid' });
      });

      it('off (0 s): a rotated token never rotates again, even presented with a clock behind the rotation', async () => {
        const families = store({ reuseGrace: 0 });
        const { family, refreshToken } = await families.create(grant(), context);
        const next = await rotated(families, refreshToken);
        clock.advance(-2 * SECOND); // e.g. another instance whose clock is 2 s behind
        try {
          expect(await families.rotate(refreshToken, context)).toMatchObject({ outcome: 'reused', familyId: family.id, family: { id: family.id } });
        } finally {
          clock.advance(2 * SECOND);
        }
        expect(await families.rotate(next.refreshToken, context)).toEqual({ outcome: 'invalid' });
      });

      it('on: 10 concurrent presentations of one token all get the same successor, in one script each and no GET', async () => {
        const families = store({ reuseGrace: 10 });
        const { family, refreshToken } = await families.create(grant(), context);
        // The script is loaded on this subject's server first, so no EVALSHA falls back to EVAL below.
        await rotated(families, (await families.create(grant(), context)).refreshToken);
        const [scriptsBefore, getsBefore] = [await backend.scriptCalls(), await backend.getCalls()];
        const results = await Promise.all(Array.from({ length: 10 }, () => families.rotate(refreshToken, context)));
        const [scriptsAfter, getsAfter] = [await backend.scriptCalls(), await backend.getCalls()];
        const successors = results.map((result) => (result.outcome === 'rotated' ? result.refreshToken : result.outcome));
        expect(new Set(successors).size).toBe(1);
        const [successor] = successors as [string];
        expect(successor).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}$/);
        expect(successor).not.toBe(refreshToken);
        if (scriptsBefore !== undefined) {
          expect(scriptsAfter! - scriptsBefore).toBe(10);
          // commandstats counts a script's own commands: its one GET of the family. No GET came from outside.
          expect(getsAfter! - getsBefore!).toBe(10);
        }
        // One live token: the successor; the family is alive and carries on from it.
        expect(await families.isRevoked(family.id)).toBe(false);
        expect(await families.inspect(refreshToken)).toBeNull();
        expect(await families.inspect(successor)).toMatchObject({ id: family.id });
        const after = await rotated(families, successor);
        expect(await families.inspect(after.refreshToken)).toMatchObject({ id: family.id });
        expect(await families.inspect(successor)).toBeNull();
      });

      it('on: a retry inside the window (a lost response) gets the same successor and changes nothing', async () => {
        const families = store({ reuseGrace: 10 });
        const { family, refreshToken: first } = await families.create(grant(), context);
        const lost = await rotated(families, first); // the response the client never got
        await elapse(9 * SECOND);
        const retry = await rotated(families, first);
        expect(retry.refreshToken).toBe(lost.refreshToken);
        expect(retry.family).toEqual(lost.family);
        expect(await families.get(family.id)).toEqual(lost.family);
        expect(await families.inspect(first)).toBeNull();
        const after = await rotated(families, retry.refreshToken);
        expect(await families.inspect(after.refreshToken)).toMatchObject({ id: family.id });
      });

      it("on: a stolen token replayed inside the window gets the owner's successor; once either side rotates it, the other's use after the window is reuse", async () => {
        const families = store({ reuseGrace: 10 });
        const { family, refreshToken: first } = await families.create(grant(), context);
        const owner = await rotated(families, first);
        const thief = await rotated(families, first); // a replay within the window of the owner's rotation
        expect(thief.refreshToken).toBe(owner.refreshToken);
        await rotated(families, owner.refreshToken); // the owner's next refresh
        await elapse(10 * SECOND);
        expect(await families.rotate(thief.refreshToken, context)).toMatchObject({ outcome: 'reused', familyId: family.id, family: { id: family.id } });
        expect(await families.isRevoked(family.id)).toBe(true);
      });

      it("on: another client's retry inside the window is refused and changes nothing", async () => {
        const families = store({ reuseGrace: 10 });
        const { family, refreshToken: first } = await families.create(grant(), context);
        const next = await families.rotate(first, context, { clientId: family.clientId });
        if (next.outcome !== 'rotated') throw new Error(next.outcome);
        expect(await families.rotate(first, context, { clientId: 'someone-else' })).toEqual({ outcome: 'invalid' });
        expect(await families.isRevoked(family.id)).toBe(false);
        expect(await families.inspect(next.refreshToken)).toMatchObject({ id: family.id });
        expect(await families.rotate(first, context, { clientId: family.clientId })).toMatchObject({ outcome: 'rotated', refreshToken: next.refreshToken });
      });

      it('on: the window is counted from the rotation, not extended by retries, and then it is reuse', async () => {
        const families = store({ reuseGrace: 10 });
        const { family, refreshToken: first } = await families.create(grant(), context);
        await rotated(families, first);
        await elapse(6 * SECOND);
        await rotated(families, first);
        await elapse(4 * SECOND); // 10 s after the rotation: the window is over
        expect(await families.rotate(first, context)).toMatchObject({ outcome: 'reused', familyId: family.id, family: { id: family.id } });
      });

      it('on: only the token just rotated is a retry; the one before it is reuse, even inside the window', async () => {
        const families = store({ reuseGrace: 10 });
        const { family, refreshToken: first } = await families.create(grant(), context);
        const second = await rotated(families, first);
        await rotated(families, second.refreshToken);
        expect(await families.rotate(first, context)).toMatchObject({ outcome: 'reused', familyId: family.id, family: { id: family.id } });
      });
    });

    describe('expiry', () => {
      it('a family unused for refreshTokenTtl expires: invalid, not revoked', async () => {
        const families = store({ refreshTokenTtl: 60, familyMaxTtl: 600 });
        const { family, refreshToken } = await families.create(grant(), context);
        clock.advance(59 * SECOND);
        const next = await rotated(families, refreshToken);
        clock.advance(59 * SECOND);
        expect(await families.get(family.id)).not.toBeNull();
        clock.advance(1 * SECOND);
        expect(await families.rotate(next.refreshToken, context)).toEqual({ outcome: 'invalid' });
        expect(await families.get(family.id)).toBeNull();
        expect(await families.inspect(next.refreshToken)).toBeNull();
        expect(await families.isRevoked(family.id)).toBe(false);
        expect(await families.listBySubject('user-1')).toEqual([]);
      });

      it('an expired family is no longer there to revoke: nothing ends, no marker is left', async () => {
        const families = store({ refreshTokenTtl: 60, familyMaxTtl: 600 });
        const { family } = await families.create(grant(), context);
        await families.create(grant(), context);
        clock.advance(60 * SECOND);
        expect(await families.revoke(family.id)).toBe(false);
        expect(await families.revokeAll('user-1')).toBe(0);
        expect(await families.isRevoked(family.id)).toBe(false);
      });

      it('rotation never extends a family past its absolute expiry', async () => {
        const families = store({ refreshTokenTtl: 60, familyMaxTtl: 150 });
        let { family, refreshToken }: { family: Family; refreshToken: string } = await families.create(grant(), context);
        const expiresAt = family.expiresAt;
        expect(expiresAt).toBe(clock.now() + 150 * SECOND);
        for (let i = 0; i < 3; i += 1) {
          clock.advance(50 * SECOND); // 50, 100, 150 s
          if (clock.now() >= expiresAt) break;
          ({ family, refreshToken } = await rotated(families, refreshToken));
          expect(family.expiresAt).toBe(expiresAt);
        }
        expect(await families.rotate(refreshToken, context)).toEqual({ outcome: 'invalid' });
        expect(await families.get(family.id)).toBeNull();
      });
    });

    describe('revocation', () => {
      it('revoke ends one family and leaves a marker for revokedMarkerTtl', async () => {
        const families = store({ revokedMarkerTtl: 120 });
        const a = await families.create(grant(), context);
        const b = await families.create(grant(), context);
        expect(await families.isRevoked(a.family.id)).toBe(false);
        expect(await families.revoke(a.family.id)).toBe(true);
        expect(await families.revoke(a.family.id)).toBe(false);
        expect(await families.rotate(a.refreshToken, context)).toEqual({ outcome: 'invalid' });
        expect(await families.get(a.family.id)).toBeNull();
        expect(await families.isRevoked(a.family.id)).toBe(true);
        clock.advance(119 * SECOND);
        expect(await families.isRevoked(a.family.id)).toBe(true);
        clock.advance(1 * SECOND);
        expect(await families.isRevoked(a.family.id)).toBe(false);
        await rotated(families, b.refreshToken);
        expect(await families.revoke(createRefreshTokenCodec({ secret: SECRET, random: cryptoRandom }).newFamilyId('user-1'))).toBe(false);
      });

      it('reuse leaves the same marker', async () => {
        const families = store({ revokedMarkerTtl: 30 });
        const { family, refreshToken } = await families.create(grant(), context);
        await rotated(families, refreshToken);
        await families.rotate(refreshToken, context);
        expect(await families.isRevoked(family.id)).toBe(true);
        clock.advance(30 * SECOND);
        expect(await families.isRevoked(family.id)).toBe(false);
      });

      it("lists a subject's live families, most recently used first", async () => {
        const families = store();
        const a = await families.create(grant('alice', 'app'), { userAgent: 'A' });
        clock.advance(SECOND);
        const b = await families.create(grant('alice', 'cli'), { userAgent: 'B' });
        clock.advance(SECOND);
        await families.create(grant('bob'), {});
        clock.advance(SECOND);
        await rotated(families, a.refreshToken);
        const listed = await families.listBySubject('alice');
        expect(listed.map((family) => family.id)).toEqual([a.family.id, b.family.id]);
        expect(listed[0]).toMatchObject({ clientId: 'app', userAgent: context.userAgent, lastUsedAt: clock.now() });
        expect(listed[1]).toMatchObject({ clientId: 'cli', userAgent: 'B' });
        expect(await families.listBySubject('nobody')).toEqual([]);
      });

      it('a subject holds at most maxFamiliesPerSubject live families: one more revokes the oldest', async () => {
        const families = store({ maxFamiliesPerSubject: 3 });
        const made = [];
        for (let i = 0; i < 5; i += 1) {
          made.push(await families.create(grant('alice'), context));
          clock.advance(SECOND);
        }
        const bob = await families.create(grant('bob'), context);
        expect((await families.listBySubject('alice')).map((family) => family.id).sort()).toEqual(
          made
            .slice(2)
            .map(({ family }) => family.id)
            .sort(),
        );
        for (const old of made.slice(0, 2)) {
          expect(await families.rotate(old.refreshToken, context)).toEqual({ outcome: 'invalid' });
          expect(await families.isRevoked(old.family.id)).toBe(true);
        }
        await rotated(families, made[4]!.refreshToken);
        await rotated(families, bob.refreshToken);
        expect(() => store({ maxFamiliesPerSubject: 0 })).toThrow(RangeError);
      });

      it('one family over maxFamiliesPerSubject revokes the oldest only', async () => {
        const families = store({ maxFamiliesPerSubject: 3 });
        const made = [];
        for (let i = 0; i < 4; i += 1) {
          made.push(await families.create(grant('alice'), context));
          clock.advance(SECOND);
        }
        expect((await families.listBySubject('alice')).map((family) => family.id).sort()).toEqual(
          made
            .slice(1)
            .map(({ family }) => family.id)
            .sort(),
        );
        expect(await families.isRevoked(made[0]!.family.id)).toBe(true);
        expect(await families.isRevoked(made[1]!.family.id)).toBe(false);
        await rotated(families, made[1]!.refreshToken);
        // The one that made room names the family it ended (for its security event), the others none.
        expect(made.map(({ family }) => family.endedByCap)).toEqual([[], [], [], [made[0]!.family.id]]);
      });

      it('create names the family the cap ended: the oldest live one of that subject, never a revoked one', async () => {
        const families = store({ maxFamiliesPerSubject: 3 });
        const made = [];
        for (let i = 0; i < 3; i += 1) {
          made.push(await families.create(grant('alice'), context));
          clock.advance(SECOND);
        }
        const bob = await families.create(grant('bob'), context);
        await families.revoke(made[0]!.family.id);
        // Two live and the new one: at the cap, nothing ended.
        const third = await families.create(grant('alice'), context);
        clock.advance(SECOND);
        const fourth = await families.create(grant('alice'), context);
        expect([bob, third, fourth].map(({ family }) => family.endedByCap)).toEqual([[], [], [made[1]!.family.id]]);
        expect((await families.listBySubject('alice')).map(({ id }) => id).sort()).toEqual([made[2]!.family.id, third.family.id, fourth.family.id].sort());
        expect((await families.listBySubject('bob')).map(({ id }) => id)).toEqual([bob.family.id]);
      });

      it('ended and expired families leave the index: the cap counts live ones only, and a login costs one script', async () => {
        const families = store({ refreshTokenTtl: 60, familyMaxTtl: 3600, maxFamiliesPerSubject: 3 });
        // Ten families left to expire unused, then the one that stays live...
        for (let i = 0; i < 10; i += 1) await families.create(grant('alice'), context);
        clock.advance(30 * SECOND);
        const live = await families.create(grant('alice'), context);
        clock.advance(31 * SECOND); // the ten are 61 s unused; `live` 31 s
        // ...and fifty ended by reuse.
        for (let i = 0; i < 50; i += 1) {
          const { refreshToken } = await families.create(grant('alice'), context);
          await rotated(families, refreshToken);
          expect((await families.rotate(refreshToken, context)).outcome).toBe('reused');
        }
        const before = await backend.scriptCalls();
        const login = await families.create(grant('alice'), context);
        const after = await backend.scriptCalls();
        if (before !== undefined) expect(after! - before).toBe(1);
        // One live family and the new one: under the cap of 3, so neither ended the other.
        expect((await families.listBySubject('alice')).map(({ id }) => id).sort()).toEqual([live.family.id, login.family.id].sort());
        // Expired and reused families were not ended by the cap: the login names none.
        expect(login.family.endedByCap).toEqual([]);
        expect(await families.isRevoked(live.family.id)).toBe(false);
        await rotated(families, live.refreshToken);
        expect(await families.revokeAll('alice')).toBe(2);
      });

      it("revokeAll ends every family of the subject but the one kept, and no one else's", async () => {
        const families = store();
        const kept = await families.create(grant('alice'), context);
        const others = await Promise.all([1, 2, 3].map(() => families.create(grant('alice'), context)));
        const bob = await families.create(grant('bob'), context);
        await families.revoke(others[0]!.family.id);
        expect(await families.revokeAll('alice', kept.family.id)).toBe(2);
        expect((await families.listBySubject('alice')).map((family) => family.id)).toEqual([kept.family.id]);
        for (const other of others) {
          expect(await families.rotate(other.refreshToken, context)).toEqual({ outcome: 'invalid' });
          expect(await families.isRevoked(other.family.id)).toBe(true);
        }
        expect(await families.isRevoked(kept.family.id)).toBe(false);
        await rotated(families, kept.refreshToken);
        await rotated(families, bob.refreshToken);
        expect(await families.revokeAll('alice')).toBe(1);
        expect(await families.listBySubject('alice')).toEqual([]);
        expect(await families.revokeAll('alice')).toBe(0);
      });

      it('revokeAll stamps the end of the sessions: a family from a sign-in before it is refused and nothing changes; one after it, or without a sign-in time, is created', async () => {
        const families = store({ maxFamiliesPerSubject: 2 });
        const signedInAt = clock.now();
        const kept = await families.create(grant('alice'), context);
        const other = await families.create(grant('alice'), context);
        const bob = await families.create(grant('bob'), context);
        clock.advance(SECOND);
        // A logout-all (or password change) lands while a login that checked the user at `signedInAt` is in flight.
        expect(await families.revokeAll('alice', kept.family.id)).toBe(1);
        await expect(families.create({ ...grant('alice'), signedInAt }, context)).rejects.toBeInstanceOf(SignInEndedError);
        // Refused before the cap is applied: the kept family is not ended to make room.
        expect((await families.listBySubject('alice')).map(({ id }) => id)).toEqual([kept.family.id]);
        await rotated(families, kept.refreshToken);
        expect(await families.isRevoked(other.family.id)).toBe(true);
        // Another subject's sign-ins are not touched.
        await families.create({ ...grant('bob'), signedInAt }, context);
        await rotated(families, bob.refreshToken);
        // A sign-in at the same instant or later goes through; so does a family with no sign-in time.
        const after = await families.create({ ...grant('alice'), signedInAt: clock.now() }, context);
        await rotated(families, after.refreshToken);
        await families.create(grant('alice'), context);
        // A later revokeAll from a clock that is behind never moves the stamp back.
        clock.advance(-SECOND / 2);
        await families.revokeAll('alice');
        clock.advance(SECOND / 2);
        await expect(families.create({ ...grant('alice'), signedInAt: clock.now() - 1 }, context)).rejects.toBeInstanceOf(SignInEndedError);
      });

      it('subjects with hash-tag characters stay separate', async () => {
        const families = store();
        const odd = await families.create(grant('a}b{c'), context);
        await families.create(grant('a'), context);
        expect((await families.listBySubject('a}b{c')).map((family) => family.id)).toEqual([odd.family.id]);
        expect(await families.revokeAll('a}b{c')).toBe(1);
        expect(await families.listBySubject('a')).toHaveLength(1);
      });
    });

    it('records at most 256 bytes of user agent and 64 of IP', async () => {
      const families = store();
      const { family, refreshToken } = await families.create(grant(), { userAgent: 'é'.repeat(1000), ip: '::1' });
      expect(Buffer.byteLength(family.userAgent!)).toBe(256);
      const long = await families.create(grant(), { ip: `fe80::1%${'x'.repeat(500)}` });
      expect(Buffer.byteLength(long.family.ip!)).toBe(64);
      expect((await families.get(long.family.id))?.ip).toBe(long.family.ip);
      const emoji = await families.rotate(refreshToken, { userAgent: '😀'.repeat(100) });
      if (emoji.outcome !== 'rotated') throw new Error(emoji.outcome);
      expect(emoji.family.userAgent).toBe('😀'.repeat(64));
      expect(emoji.family.ip).toBeUndefined();
      expect(await families.get(family.id)).toMatchObject({ userAgent: '😀'.repeat(64), ip: undefined });
    });

    it('cuts a long user agent at a character boundary, never inside a character', async () => {
      const families = store();
      // 1 + 2 × 200 bytes: the 256-byte cut falls inside an 'é'.
      const { family } = await families.create(grant(), { userAgent: `a${'é'.repeat(200)}` });
      expect(family.userAgent).toBe(`a${'é'.repeat(127)}`);
      expect(await families.get(family.id)).toMatchObject({ userAgent: `a${'é'.repeat(127)}` });
    });
  });

  describe('AccessTokenDenylist contract', () => {
    let denylist: AccessTokenDenylist;
    beforeAll(() => {
      denylist = backend.denylist(clock);
    });

    it('denies a jti until the token expires, then forgets it', async () => {
      const expiresAt = clock.now() + 900 * SECOND;
      await denylist.deny('jti-1', expiresAt);
      expect(await denylist.isDenied('jti-1')).toBe(true);
      expect(await denylist.isDenied('jti-2')).toBe(false);
      clock.advance(899 * SECOND);
      expect(await denylist.isDenied('jti-1')).toBe(true);
      clock.advance(1 * SECOND);
      expect(await denylist.isDenied('jti-1')).toBe(false);
    });

    it('ignores tokens already expired; rejects a bad jti, answers false for one', async () => {
      await denylist.deny('old', clock.now() - 1);
      expect(await denylist.isDenied('old')).toBe(false);
      await expect(denylist.deny('', clock.now() + SECOND)).rejects.toBeInstanceOf(TypeError);
      await expect(denylist.deny('x'.repeat(257), clock.now() + SECOND)).rejects.toBeInstanceOf(TypeError);
      await expect(denylist.deny('ok', Number.NaN)).rejects.toBeInstanceOf(TypeError);
      expect(await denylist.isDenied('')).toBe(false);
      expect(await denylist.isDenied(undefined as unknown as string)).toBe(false);
    });

    it('answers ping', async () => {
      await expect(denylist.ping()).resolves.toBeUndefined();
    });
  });
});
