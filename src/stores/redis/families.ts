/**
 * Refresh-token families in Redis (standalone or Cluster).
 *
 * Keys (the `{…}` hash tag puts each family's keys in one slot, so every script touches
 * one slot):
 * - `rt:fam:{<familyId>}` string: the family as JSON (StoredFamily below): grant, created,
 *   last used, absolute expiry `x`, idle expiry `ie` = min(last use + idle TTL, x), SHA-256
 *   of the current token `h`, the previous token's hash `ph` and when it was rotated away
 *   `pt` (the grace window), user agent and IP of the last use. Key TTL = ie - now,
 *   renewed by each rotation. One JSON string rather than a hash: a hash holding a value
 *   over 64 bytes (any real User-Agent) leaves Redis's compact encoding and costs over
 *   1 KB; the string stays near its length (about 500 bytes).
 * - `rt:fam:{<familyId>}:revoked` string: when the marker ends; TTL = revokedMarkerTtl.
 * - `rt:sub:{<subject>}` sorted set: family ids scored by absolute expiry; pruned on every
 *   read and write, key TTL = the latest expiry in it.
 *
 * The subject index lives in another slot than the families, so it is written by its own
 * single-key command, never inside a family script. That is safe because the index is
 * advisory: it is written *before* the family exists (so a live family is always in it,
 * and logout-all cannot miss one), and every id read from it is checked against the
 * family record (which must exist, be live and name the same subject). A stale entry
 * costs one lookup and is removed when seen.
 *
 * Expiry follows the injected clock: scripts receive `now` and compare it with the stored
 * expiries, so behaviour follows the application's clock (as the memory adapter does),
 * and TTLs are set relative to it (PEXPIRE/PX). Key TTLs only collect garbage. The one
 * exception is the grace window, which orders a presentation against the rotation before
 * it: instances' clocks may disagree, so Redis times both (see ROTATE).
 */
import { isFamilyId } from '../../tokens/refresh-token.js';
import { assertHashes, assertNewFamily, clampUseContext, FAMILY_STORE, familyPolicy, type FamilyStoreOptions } from '../family-policy.js';
import type { Family, FamilyStore, NewFamily, RotateResult, RotationHashes, UseContext } from '../types.js';
import { defineScript, guardRedis, pingRedis, runScript, type RedisClient } from './connection.js';

export interface RedisFamilyStoreOptions extends FamilyStoreOptions {
  readonly redis: RedisClient;
}

const familyKey = (id: string): string => `rt:fam:{${id}}`;
const markerKey = (id: string): string => `rt:fam:{${id}}:revoked`;
const subjectKey = (subject: string): string => `rt:sub:{${subject}}`;

/** The JSON stored per family (short names: it is kept once per session). */
interface StoredFamily {
  s: string; // subject
  c: string; // client id
  sc: string; // scope
  a: string; // audience
  ca: number; // created at
  lu: number; // last used at
  x: number; // absolute expiry
  ie: number; // idle expiry
  h: string; // hash of the current token
  ph?: string; // hash of the previous token
  pt?: number; // when the previous token was rotated away
  ua: string;
  ip: string;
}

// Numbers handed to redis.call go through string.format('%d'): Lua would otherwise print
// large ones in exponent form, which PX rejects. cjson keeps 14 significant digits, so
// millisecond timestamps (13 digits) survive a decode/encode round trip exactly.

/**
 * KEYS: family, marker. ARGV: presented hash, next hash, now, idle ms, grace ms, marker ms,
 * user agent, ip, expected client id ('' = any; another client's token changes nothing). The caller has verified the presented token's MAC, so a token that is
 * neither current nor a retry was issued for this family and rotated away: reuse.
 * Replies nil (invalid), 'reused', or the rotated family's JSON.
 *
 * The grace window is timed by Redis (TIME), not by the caller: `now` is the calling
 * instance's clock, read before the script was sent, and instances disagree. Both the
 * rotation's stamp `pt` and the retry's come from the one server that runs every script of
 * this family (its master, under Cluster), so a presentation that runs after the rotation
 * is never stamped before it; one that is (that server's clock went back, or a failover
 * moved the family to a server whose clock is behind) is reuse, never a retry. With no
 * grace window, no presentation after the rotation is a retry at all.
 *
 * `#!lua` with no flags: a script that may write, which Redis refuses as a whole, before it
 * runs, when it is out of memory, rather than stopping it half-way at its first write.
 * TIME is allowed because Redis 7 replicates a script's effects, not the script.
 */
const ROTATE = defineScript(`#!lua
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local f = cjson.decode(raw)
local now = tonumber(ARGV[3])
if now >= f.ie then return false end
if ARGV[9] ~= '' and f.c ~= ARGV[9] then return false end
local time = redis.call('TIME')
local stamp = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if ARGV[1] == f.h then
  f.ph = f.h
  f.pt = stamp
elseif f.ph and ARGV[1] == f.ph and stamp >= f.pt and stamp < f.pt + tonumber(ARGV[5]) then
  -- a retry within the grace window: ph and pt stay, so the window is never extended
else
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], string.format('%d', now + tonumber(ARGV[6])), 'PX', ARGV[6])
  return 'reused'
end
f.h = ARGV[2]
f.lu = now
f.ie = math.min(now + tonumber(ARGV[4]), f.x)
f.ua = ARGV[7]
f.ip = ARGV[8]
local updated = cjson.encode(f)
redis.call('SET', KEYS[1], updated, 'PX', string.format('%d', f.ie - now))
return updated
`);

/**
 * KEYS: family, marker. ARGV: now, marker ms, expected subject ('' = any).
 * Replies the subject when a live family was revoked, nil otherwise.
 */
const REVOKE = defineScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local f = cjson.decode(raw)
if ARGV[3] ~= '' and f.s ~= ARGV[3] then return false end
redis.call('DEL', KEYS[1])
local now = tonumber(ARGV[1])
if now >= f.ie then return false end
redis.call('SET', KEYS[2], string.format('%d', now + tonumber(ARGV[2])), 'PX', ARGV[2])
return f.s
`);

/**
 * KEYS: subject index. ARGV: now, family id, its absolute expiry, the cap per subject.
 * Replies the ids beyond the cap, oldest first (the lowest scores: every family lives
 * maxMs, so the earliest expiry is the earliest creation), for the caller to revoke.
 */
const INDEX_ADD = defineScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], string.format('%d', tonumber(last[2]) - tonumber(ARGV[1])))
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over <= 0 then return {} end
return redis.call('ZRANGE', KEYS[1], 0, over - 1)
`);

/**
 * KEYS: subject index. ARGV: now. Replies the families not yet past their absolute expiry,
 * as id, expiry, id, expiry, ...
 */
const INDEX_LIST = defineScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
`);

/**
 * `create` indexes a family one round trip before it writes it. An index entry younger
 * than this may belong to a family being written right now, so it is never tidied away
 * as stale: a sessions listing or a logout-all landing in that gap would otherwise drop
 * the entry of a family that then lives unindexed, out of reach of logout-all and of
 * the password change. Generous next to the gap; a truly stale entry only waits longer.
 */
const INDEX_SETTLE_MS = 60_000;

export function createRedisFamilyStore(options: RedisFamilyStoreOptions): FamilyStore {
  const { redis, clock } = options;
  const { idleMs, maxMs, graceMs, markerMs, maxPerSubject } = familyPolicy(options);
  const guard = <T>(operation: () => Promise<T>): Promise<T> => guardRedis(FAMILY_STORE, operation);

  async function read(familyId: string, now: number): Promise<{ family: Family; hash: string } | null> {
    const raw = await guard(() => redis.get(familyKey(familyId)));
    return toFamily(familyId, raw, now);
  }

  /** The subject's indexed families, each with whether its entry is old enough to tidy (INDEX_SETTLE_MS). */
  async function listIds(subject: string, now: number): Promise<{ id: string; settled: boolean }[]> {
    const reply = await guard(() => runScript(redis, INDEX_LIST, [subjectKey(subject)], [now]));
    const entries: { id: string; settled: boolean }[] = [];
    if (!Array.isArray(reply)) return entries;
    for (let index = 0; index + 1 < reply.length; index += 2) {
      const id: unknown = reply[index];
      // The score is the absolute expiry, so the entry was made at score - maxMs.
      if (isFamilyId(id)) entries.push({ id, settled: Number(reply[index + 1]) - maxMs < now - INDEX_SETTLE_MS });
    }
    return entries;
  }

  /** The index is advisory: failing to tidy it loses nothing, so that failure is not the caller's. */
  async function unindex(subject: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await redis.zrem(subjectKey(subject), ...ids).catch(() => undefined);
  }

  async function revokeOne(familyId: string, now: number, subject: string): Promise<string | null> {
    const reply = await guard(() => runScript(redis, REVOKE, [familyKey(familyId), markerKey(familyId)], [now, markerMs, subject]));
    return typeof reply === 'string' ? reply : null;
  }

  return {
    ping: () => pingRedis(redis),

    async create(grant: NewFamily, context: UseContext) {
      assertNewFamily(grant);
      const now = clock.now();
      const { id } = grant;
      const { userAgent, ip } = clampUseContext(context);
      const expiresAt = now + maxMs;
      const idleExpiresAt = Math.min(now + idleMs, expiresAt);
      const stored: StoredFamily = {
        s: grant.subject, c: grant.clientId, sc: grant.scope, a: grant.audience,
        ca: now, lu: now, x: expiresAt, ie: idleExpiresAt, h: grant.tokenHash, ua: userAgent, ip,
      };
      // Index first: a family that exists is then always findable by logout-all. If the
      // second step fails the caller gets no token, and the index entry is a stale one.
      const over = await guard(() => runScript(redis, INDEX_ADD, [subjectKey(grant.subject)], [now, id, expiresAt, maxPerSubject]));
      await guard(() => redis.set(familyKey(id), JSON.stringify(stored), 'PX', Math.max(1, Math.ceil(idleExpiresAt - now))));
      // Over the cap: the oldest go, each in its own slot (one script each), then their entries.
      const evicted = Array.isArray(over) ? over.filter((old): old is string => isFamilyId(old) && old !== id) : [];
      if (evicted.length > 0) {
        const revoked = await Promise.all(evicted.map((old) => revokeOne(old, now, grant.subject)));
        // Only what was revoked leaves the index: an entry with no family yet may be one
        // another instance is writing right now (see INDEX_SETTLE_MS).
        await unindex(grant.subject, evicted.filter((_, index) => revoked[index] !== null));
      }
      const family: Family = Object.freeze({
        subject: grant.subject,
        clientId: grant.clientId,
        scope: grant.scope,
        audience: grant.audience,
        id,
        createdAt: now,
        lastUsedAt: now,
        expiresAt,
        userAgent: userAgent || undefined,
        ip: ip || undefined,
      });
      return family;
    },

    async rotate(familyId: string, hashes: RotationHashes, context: UseContext, expected: { readonly clientId?: string } = {}): Promise<RotateResult> {
      assertHashes(hashes);
      if (!isFamilyId(familyId)) return { outcome: 'invalid' };
      const { userAgent, ip } = clampUseContext(context);
      const now = clock.now();
      const reply = await guard(() =>
        runScript(redis, ROTATE, [familyKey(familyId), markerKey(familyId)], [
          hashes.presented, hashes.next, now, idleMs, graceMs, markerMs, userAgent, ip, expected.clientId ?? '',
        ]),
      );
      if (reply === 'reused') return { outcome: 'reused', familyId };
      const rotated = toFamily(familyId, reply, now);
      if (!rotated) return { outcome: 'invalid' };
      return { outcome: 'rotated', family: rotated.family };
    },

    async current(familyId: string, tokenHash: string) {
      if (!isFamilyId(familyId)) return null;
      const found = await read(familyId, clock.now());
      return found && found.hash === tokenHash ? found.family : null;
    },

    async get(familyId: string) {
      if (!isFamilyId(familyId)) return null;
      return (await read(familyId, clock.now()))?.family ?? null;
    },

    async listBySubject(subject: string) {
      if (typeof subject !== 'string') return [];
      const now = clock.now();
      const entries = await listIds(subject, now);
      const found = await Promise.all(entries.map(({ id }) => read(id, now)));
      const families: Family[] = [];
      const stale: string[] = [];
      found.forEach((entry, index) => {
        if (entry && entry.family.subject === subject) families.push(entry.family);
        else if (entries[index]!.settled) stale.push(entries[index]!.id);
      });
      await unindex(subject, stale);
      return families.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
    },

    async revoke(familyId: string) {
      if (!isFamilyId(familyId)) return false;
      const subject = await revokeOne(familyId, clock.now(), '');
      if (subject === null) return false;
      await unindex(subject, [familyId]);
      return true;
    },

    async revokeAll(subject: string, exceptFamilyId?: string) {
      if (typeof subject !== 'string') return 0;
      const now = clock.now();
      const targets = (await listIds(subject, now)).filter(({ id }) => id !== exceptFamilyId);
      // One script per family: families live in different slots, so no single script
      // may revoke several. Each is atomic; see FamilyStore.revokeAll for the set.
      const revoked = await Promise.all(targets.map(({ id }) => revokeOne(id, now, subject)));
      // A revoked family is gone for good; one not found may still be being written.
      await unindex(subject, targets.filter((target, index) => revoked[index] !== null || target.settled).map(({ id }) => id));
      return revoked.filter((entry) => entry !== null).length;
    },

    async isRevoked(familyId: string) {
      if (!isFamilyId(familyId)) return false;
      const until = await guard(() => redis.get(markerKey(familyId)));
      return until !== null && clock.now() < Number(until);
    },
  };
}

/** A Family from its stored JSON, or null when absent, malformed or expired by `now`. */
function toFamily(id: string, raw: unknown, now: number): { family: Family; hash: string } | null {
  if (typeof raw !== 'string') return null;
  let stored: Partial<StoredFamily>;
  try {
    stored = JSON.parse(raw) as Partial<StoredFamily>;
  } catch {
    return null;
  }
  const { s, c, sc, a, ca, lu, x, ie, h, ua, ip } = stored;
  if (typeof s !== 'string' || typeof c !== 'string' || typeof sc !== 'string' || typeof a !== 'string' || typeof h !== 'string') return null;
  if (typeof ca !== 'number' || typeof lu !== 'number' || typeof x !== 'number' || typeof ie !== 'number') return null;
  if (!(now < ie && now < x)) return null;
  const family: Family = Object.freeze({
    subject: s,
    clientId: c,
    scope: sc,
    audience: a,
    id,
    createdAt: ca,
    lastUsedAt: lu,
    expiresAt: x,
    userAgent: typeof ua === 'string' && ua !== '' ? ua : undefined,
    ip: typeof ip === 'string' && ip !== '' ? ip : undefined,
  });
  return { family, hash: h };
}
