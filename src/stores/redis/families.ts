/**
 * Refresh-token families in Redis (standalone or Cluster).
 *
 * Keys. Every family id starts with its subject's tag (`subjectTag`, 4 characters), and
 * every key of a subject, its families' and its index's, carries that tag as its hash tag
 * `{T}`: a subject lives in one slot, so each script below, including those that end a
 * family and remove it from the index in one step, touches one slot, and runs unchanged
 * on a Cluster (on the master of that slot).
 * - `rt:fam:{T}:<familyId>` string: the family as JSON (StoredFamily below): grant, created,
 *   last used, absolute expiry `x`, idle expiry `ie` = min(last use + idle TTL, x), SHA-256
 *   of the current token `h`, the previous token's hash `ph` and when (Redis's clock) it
 *   was rotated away `pt` (the grace window), user agent and IP of the last use. Key TTL =
 *   ie - now, renewed by each rotation. One JSON string rather than a hash: a hash holding
 *   a value over 64 bytes (any real User-Agent) leaves Redis's compact encoding and costs
 *   over 1 KB; the string stays near its length (about 500 bytes).
 * - `rt:fam:{T}:<familyId>:revoked` string: when the marker ends; TTL = revokedMarkerTtl.
 * - `rt:sub:{T}:<subject>` sorted set: the subject's family ids scored by absolute expiry
 *   (so in creation order, for the session cap); `rt:idle:{T}:<subject>` the same ids
 *   scored by idle expiry, kept by each rotation, to find the families that expired
 *   unused. Both are written in the same script as the family: a family is indexed from
 *   the moment it exists, every path that ends one removes its entries as it ends it, and
 *   `create` drops the entries of families that expired (the only ones that cannot remove
 *   themselves), so the cap counts live families only and costs one script per login.
 * - `rt:ended:{T}:<subject>` string: when `revokeAll` last ended the subject's sessions
 *   (ms, the caller's clock); TTL = ENDED_SESSIONS_TTL_MS. `create` refuses a family whose
 *   sign-in is older, in the same script that would write it.
 *
 * Scripts name the keys of other families of the same subject (and a family's index keys)
 * from ids and the subject inside the script. They share the declared keys' hash tag, so
 * they are in the declared slot, which is all Redis requires to run them on a Cluster.
 *
 * Expiry follows the injected clock: scripts receive `now` and compare it with the stored
 * expiries, so behaviour follows the application's clock (as the memory adapter does),
 * and TTLs are set relative to it (PEXPIRE/PX). Key TTLs only collect garbage. The one
 * exception is the grace window, which orders a presentation against the rotation before
 * it: instances' clocks may disagree, so Redis times both (see ROTATE).
 */
import { familyIdTag, isFamilyId, subjectTag } from '../../tokens/refresh-token.js';
import {
  assertHashes,
  assertNewFamily,
  clampUseContext,
  ENDED_SESSIONS_TTL_MS,
  FAMILY_STORE,
  familyPolicy,
  signInOf,
  type FamilyStoreOptions,
} from '../family-policy.js';
import {
  FamilyRevokedError,
  SignInEndedError,
  type CreatedFamily,
  type Family,
  type FamilyStore,
  type NewFamily,
  type RotateResult,
  type RotationExpectations,
  type RotationHashes,
  type RotationRefusal,
  type UseContext,
} from '../types.js';
import { Cluster, type Redis } from 'ioredis';
import { defineScript, guardRedis, pingRedis, runScript, type RedisClient } from './connection.js';

export interface RedisFamilyStoreOptions extends FamilyStoreOptions {
  readonly redis: RedisClient;
}

// The same names as the Lua functions in KEYS_LUA below.
const familyKey = (id: string): string => `rt:fam:{${familyIdTag(id)}}:${id}`;
const markerKey = (id: string): string => `${familyKey(id)}:revoked`;
const subjectKey = (subject: string): string => `rt:sub:{${subjectTag(subject)}}:${subject}`;
const idleKey = (subject: string): string => `rt:idle:{${subjectTag(subject)}}:${subject}`;
const endedKey = (subject: string): string => `rt:ended:{${subjectTag(subject)}}:${subject}`;

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
  pt?: number; // when the previous token was rotated away (Redis's clock)
  ua: string;
  ip: string;
  si?: { i: string; t: number; m: string[] }; // the OpenID Connect sign-in: sid, auth time, amr
}

// Numbers handed to redis.call go through string.format('%d'): Lua would otherwise print
// large ones in exponent form, which PX rejects. cjson keeps 14 significant digits, so
// millisecond timestamps (13 digits) survive a decode/encode round trip exactly.

/**
 * Key names and the one way a family ends (revoked, reused or evicted): it is deleted,
 * leaves its revoked marker and leaves its subject's index, all in the calling script.
 * Every script starts with `#!lua` and no flags: a script that may write, which Redis
 * refuses as a whole when it is out of memory, rather than stopping it at its first write.
 */
const KEYS_LUA = `#!lua
local function tag(id) return string.sub(id, 1, ${subjectTag('').length}) end
local function fkey(id) return 'rt:fam:{' .. tag(id) .. '}:' .. id end
local function skey(id, subject) return 'rt:sub:{' .. tag(id) .. '}:' .. subject end
local function ikey(id, subject) return 'rt:idle:{' .. tag(id) .. '}:' .. subject end
local function unindex(id, subject)
  redis.call('ZREM', skey(id, subject), id)
  redis.call('ZREM', ikey(id, subject), id)
end
local function revoke(id, subject, now, markerMs)
  redis.call('DEL', fkey(id))
  redis.call('SET', fkey(id) .. ':revoked', string.format('%d', now + markerMs), 'PX', string.format('%d', markerMs))
  unindex(id, subject)
end
`;

/**
 * KEYS: family, marker. ARGV: presented hash, next hash, now, idle ms, grace ms, marker ms,
 * user agent, ip, expected client id ('' = any; another client's token changes nothing),
 * family id, then RotationExpectations: requested scope tokens (space-separated), '1' to
 * check them against the client's scopes, the client's scopes, requested audience ('' =
 * none), '1' to check the family's audience against the client's, the client's audiences
 * (space-separated URLs). The caller has verified the presented token's MAC, so a token that is
 * neither current nor a retry was issued for this family and rotated away: reuse. A retry
 * is the previous token presented inside the window with the current token as its next
 * (the token layer derives a token's successor from it, so every presentation of one
 * token names the same next): it writes nothing.
 * Replies nil (invalid), {'reused', family JSON}, {'refused', reason, value}, {'withdrawn',
 * family JSON} (the family ended; its JSON as it was), or the rotated family's JSON: the
 * caller reads nothing before it.
 *
 * The grace window is timed by Redis (TIME), not by the caller: `now` is the calling
 * instance's clock, read before the script was sent, and instances disagree. Both the
 * rotation's stamp `pt` and the retry's come from the one server that runs every script of
 * this family (its master, under Cluster), so a presentation that runs after the rotation
 * is never stamped before it; one that is (that server's clock went back, or a failover
 * moved the family to a server whose clock is behind) is reuse, never a retry. With no
 * grace window, no presentation after the rotation is a retry at all. TIME is allowed
 * because Redis 7 replicates a script's effects, not the script.
 */
const ROTATE = defineScript(`${KEYS_LUA}
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local f = cjson.decode(raw)
local now = tonumber(ARGV[3])
if now >= f.ie then return false end
if ARGV[9] ~= '' and f.c ~= ARGV[9] then return false end
local function set(list)
  local found = {}
  for token in string.gmatch(list, '%S+') do found[token] = true end
  return found
end
local granted = set(f.sc)
local allowed = set(ARGV[13])
for token in string.gmatch(ARGV[11], '%S+') do
  if not granted[token] then return {'refused', 'scope_exceeded', token} end
  if ARGV[12] == '1' and not allowed[token] then return {'refused', 'scope_lost', token} end
end
if ARGV[14] ~= '' and ARGV[14] ~= f.a then return {'refused', 'target', f.a} end
if ARGV[15] == '1' and not set(ARGV[16])[f.a] then
  revoke(ARGV[10], f.s, now, tonumber(ARGV[6]))
  return {'withdrawn', raw}
end
local time = redis.call('TIME')
local stamp = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if ARGV[1] ~= f.h then
  -- a retry within the grace window asks for the successor already current: nothing
  -- changes, so the window is never extended
  if f.ph and ARGV[1] == f.ph and ARGV[2] == f.h and stamp >= f.pt and stamp < f.pt + tonumber(ARGV[5]) then return raw end
  revoke(ARGV[10], f.s, now, tonumber(ARGV[6]))
  return {'reused', raw}
end
f.ph = f.h
f.pt = stamp
f.h = ARGV[2]
f.lu = now
f.ie = math.min(now + tonumber(ARGV[4]), f.x)
f.ua = ARGV[7]
f.ip = ARGV[8]
local updated = cjson.encode(f)
redis.call('SET', KEYS[1], updated, 'PX', string.format('%d', f.ie - now))
redis.call('ZADD', ikey(ARGV[10], f.s), 'XX', string.format('%d', f.ie), ARGV[10])
return updated
`);

/**
 * KEYS: family, marker. ARGV: now, marker ms, family id, '1' to leave the marker of a
 * family that does not exist (yet): CREATE then refuses that id (FamilyStore.revoke's `ahead`).
 * Replies 1 when a live family was revoked, or with '1' when a marker was left where none
 * lived; nil otherwise (an expired family is only tidied).
 */
const REVOKE = defineScript(`${KEYS_LUA}
local now = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
if raw then
  local f = cjson.decode(raw)
  if now < f.ie then
    revoke(ARGV[3], f.s, now, tonumber(ARGV[2]))
    return 1
  end
  redis.call('DEL', KEYS[1])
  unindex(ARGV[3], f.s)
end
if ARGV[4] ~= '1' then return false end
local marked = redis.call('GET', KEYS[2])
if marked and tonumber(marked) > now then return false end
redis.call('SET', KEYS[2], string.format('%d', now + tonumber(ARGV[2])), 'PX', ARGV[2])
return 1
`);

/**
 * KEYS: family, subject index, idle index, ended stamp, marker. ARGV: now, family id, family JSON,
 * absolute expiry, idle expiry, cap per subject, marker ms, subject, subject tag, signed
 * in at ('' = no check).
 * Replies 'revoked', changing nothing, when the family's id was revoked ahead of it (its
 * marker, in the family's slot, lives), and nil when the subject's sessions were ended
 * after the sign-in.
 * Otherwise drops the entries of families that expired, ends the oldest live ones beyond
 * the cap, then writes the family and its entries. Replies the ids of the families the cap ended.
 */
const CREATE = defineScript(`${KEYS_LUA}
local now = tonumber(ARGV[1])
local revokedUntil = redis.call('GET', KEYS[5])
if revokedUntil and tonumber(revokedUntil) > now then return 'revoked' end
if ARGV[10] ~= '' then
  local stamp = redis.call('GET', KEYS[4])
  if stamp and tonumber(stamp) > tonumber(ARGV[10]) then return false end
end
-- Expired unused: each such entry is dropped once, so this costs nothing in the long run.
-- One whose family still exists (it was used by an instance whose clock is behind) stays.
-- An entry without this subject's tag was not written here: dropped, never followed.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])) do
  if tag(id) ~= ARGV[9] or redis.call('EXISTS', fkey(id)) == 0 then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
end
local ended = {}
local over = redis.call('ZCARD', KEYS[2]) + 1 - tonumber(ARGV[6])
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, over - 1)) do
    if tag(id) == ARGV[9] and redis.call('EXISTS', fkey(id)) == 1 then
      revoke(id, ARGV[8], now, tonumber(ARGV[7]))
      ended[#ended + 1] = id
    else
      redis.call('ZREM', KEYS[2], id)
      redis.call('ZREM', KEYS[3], id)
    end
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', string.format('%d', math.max(1, tonumber(ARGV[5]) - now)))
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local ttl = string.format('%d', tonumber(last[2]) - now)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return ended
`);

/**
 * Walks a subject's index. KEYS: subject index, idle index, ended stamp. ARGV: now,
 * subject, subject tag, mode ('list' or 'revoke'), marker ms, family id to keep ('' =
 * none), stamp ms.
 * An entry whose family is gone, or is not this subject's, is dropped (never followed
 * into another subject's family). 'list' replies the live families' JSON; 'revoke' first
 * stamps the end of the subject's sessions (never moving it back), then ends every live
 * family but the one kept and replies how many.
 */
const SUBJECT = defineScript(`${KEYS_LUA}
local now = tonumber(ARGV[1])
local subject = ARGV[2]
if ARGV[4] == 'revoke' then
  local stamp = math.max(now, tonumber(redis.call('GET', KEYS[3]) or '0') or 0)
  redis.call('SET', KEYS[3], string.format('%d', stamp), 'PX', ARGV[7])
end
local found = {}
local ended = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local raw = false
  if tag(id) == ARGV[3] then raw = redis.call('GET', fkey(id)) end
  local f = raw and cjson.decode(raw)
  if not f or f.s ~= subject then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
  elseif now < f.ie and id ~= ARGV[6] then
    if ARGV[4] == 'revoke' then
      revoke(id, subject, now, tonumber(ARGV[5]))
      ended = ended + 1
    else
      found[#found + 1] = id
      found[#found + 1] = raw
    end
  elseif now < f.ie then
    found[#found + 1] = id
    found[#found + 1] = raw
  end
end
if ARGV[4] == 'revoke' then return ended end
return found
`);

export function createRedisFamilyStore(options: RedisFamilyStoreOptions): FamilyStore {
  const { redis, clock } = options;
  const { idleMs, maxMs, graceMs, markerMs, maxPerSubject } = familyPolicy(options);
  const guard = <T>(operation: () => Promise<T>): Promise<T> => guardRedis(FAMILY_STORE, operation);

  async function read(familyId: string, now: number): Promise<{ family: Family; hash: string } | null> {
    const raw = await guard(() => redis.get(familyKey(familyId)));
    return toFamily(familyId, raw, now);
  }

  function walk(subject: string, now: number, mode: 'list' | 'revoke', keep = ''): Promise<unknown> {
    return guard(() =>
      runScript(
        redis,
        SUBJECT,
        [subjectKey(subject), idleKey(subject), endedKey(subject)],
        [now, subject, subjectTag(subject), mode, markerMs, keep, ENDED_SESSIONS_TTL_MS],
      ),
    );
  }

  return {
    ping: () => pingRedis(redis),

    async create(grant: NewFamily, context: UseContext) {
      assertNewFamily(grant);
      const now = clock.now();
      const { id, subject } = grant;
      const { userAgent, ip } = clampUseContext(context);
      const expiresAt = now + maxMs;
      const idleExpiresAt = Math.min(now + idleMs, expiresAt);
      const stored: StoredFamily = {
        s: subject,
        c: grant.clientId,
        sc: grant.scope,
        a: grant.audience,
        ca: now,
        lu: now,
        x: expiresAt,
        ie: idleExpiresAt,
        h: grant.tokenHash,
        ua: userAgent,
        ip,
        ...(grant.signIn && { si: { i: grant.signIn.sid, t: grant.signIn.authTime, m: [...grant.signIn.amr] } }),
      };
      const reply = await guard(() =>
        runScript(
          redis,
          CREATE,
          [familyKey(id), subjectKey(subject), idleKey(subject), endedKey(subject), markerKey(id)],
          [now, id, JSON.stringify(stored), expiresAt, idleExpiresAt, maxPerSubject, markerMs, subject, subjectTag(subject), grant.signedInAt ?? ''],
        ),
      );
      if (reply === 'revoked') throw new FamilyRevokedError();
      if (reply === null) throw new SignInEndedError();
      const family: CreatedFamily = Object.freeze({
        subject,
        clientId: grant.clientId,
        scope: grant.scope,
        audience: grant.audience,
        ...(grant.signIn && { signIn: signInOf(grant.signIn) }),
        id,
        createdAt: now,
        lastUsedAt: now,
        expiresAt,
        userAgent: userAgent || undefined,
        ip: ip || undefined,
        endedByCap: Object.freeze((reply as string[]).map(String)),
      });
      return family;
    },

    async rotate(familyId: string, hashes: RotationHashes, context: UseContext, expected: RotationExpectations = {}): Promise<RotateResult> {
      assertHashes(hashes);
      if (!isFamilyId(familyId)) return { outcome: 'invalid' };
      const { userAgent, ip } = clampUseContext(context);
      const now = clock.now();
      const reply = await guard(() =>
        runScript(
          redis,
          ROTATE,
          [familyKey(familyId), markerKey(familyId)],
          [
            hashes.presented,
            hashes.next,
            now,
            idleMs,
            graceMs,
            markerMs,
            userAgent,
            ip,
            expected.clientId ?? '',
            familyId,
            (expected.scope ?? []).join(' '),
            expected.clientScopes ? '1' : '0',
            (expected.clientScopes ?? []).join(' '),
            expected.audience ?? '',
            expected.audiences ? '1' : '0',
            (expected.audiences ?? []).join(' '),
          ],
        ),
      );
      if (Array.isArray(reply) && (reply[0] === 'reused' || reply[0] === 'withdrawn')) {
        const ended = toFamily(familyId, String(reply[1]), now);
        if (!ended) return { outcome: 'invalid' };
        return { outcome: reply[0], familyId, family: ended.family };
      }
      if (Array.isArray(reply) && reply[0] === 'refused') return { outcome: 'refused', reason: reply[1] as RotationRefusal, value: String(reply[2]) };
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
      const reply = await walk(subject, now, 'list');
      const families: Family[] = [];
      if (!Array.isArray(reply)) return families;
      for (let index = 0; index + 1 < reply.length; index += 2) {
        const id: unknown = reply[index];
        const found = isFamilyId(id) ? toFamily(id, reply[index + 1], now) : null;
        if (found && found.family.subject === subject) families.push(found.family);
      }
      return families.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
    },

    async listByClient(clientId: string) {
      if (typeof clientId !== 'string') return [];
      const now = clock.now();
      const families: Family[] = [];
      for (const ids of await guard(() => scanFamilyIds(redis))) {
        const raws = await guard(() => Promise.all(ids.map((id) => redis.get(familyKey(id)))));
        ids.forEach((id, index) => {
          const found = toFamily(id, raws[index], now);
          if (found && found.family.clientId === clientId) families.push(found.family);
        });
      }
      return families;
    },

    async countLive(sampleKeys = LIVE_SAMPLE_KEYS) {
      const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
      const counts = await guard(() => Promise.all(nodes.map((node) => countFamilyKeys(node, sampleKeys))));
      return { count: Math.round(counts.reduce((sum, node) => sum + node.count, 0)), exact: counts.every((node) => node.exact) };
    },

    async revoke(familyId: string, options?: { readonly ahead?: boolean }) {
      if (!isFamilyId(familyId)) return false;
      const reply = await guard(() =>
        runScript(redis, REVOKE, [familyKey(familyId), markerKey(familyId)], [clock.now(), markerMs, familyId, options?.ahead ? '1' : '']),
      );
      return reply === 1;
    },

    async revokeAll(subject: string, exceptFamilyId?: string) {
      if (typeof subject !== 'string') return 0;
      // One script: the subject's families share its index's slot.
      return Number(await walk(subject, clock.now(), 'revoke', exceptFamilyId ?? ''));
    },

    async isRevoked(familyId: string) {
      if (!isFamilyId(familyId)) return false;
      const until = await guard(() => redis.get(markerKey(familyId)));
      return until !== null && clock.now() < Number(until);
    },
  };
}

/**
 * Every family id in the keyspace, in batches: SCAN over each master (a cluster's
 * included), revoked markers left out. Keys come and go meanwhile; SCAN still returns
 * every key that existed throughout.
 */
async function scanFamilyIds(redis: RedisClient): Promise<string[][]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const batches: string[][] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', 'rt:fam:*', 'COUNT', 1000);
      cursor = next;
      const ids = keys.filter((key) => !key.endsWith(':revoked')).map((key) => key.slice(key.indexOf('}:') + 2));
      if (ids.length > 0) batches.push(ids.filter((id) => isFamilyId(id)));
    } while (cursor !== '0');
  }
  return batches;
}

/** Keys examined per master for the live-families gauge (`countLive`). */
const LIVE_SAMPLE_KEYS = 10_000;
/** A live family's key (not its revoked marker, not an index). */
const FAMILY_KEY = /^rt:fam:\{[^}]*\}:[^:]+$/;

/**
 * The family keys on one node: SCAN from the start until `sampleKeys` keys were examined.
 * When the scan ends first the count is exact; otherwise it is the share of family keys in
 * the sample times DBSIZE. SCAN walks the hash table, where a key's place follows its hash,
 * so the sample does not favour any kind of key. A family key exists only while the family
 * is live (its TTL is its idle expiry; ending a family deletes it).
 */
async function countFamilyKeys(node: Redis, sampleKeys: number): Promise<{ count: number; exact: boolean }> {
  let [cursor, examined, found] = ['0', 0, 0];
  do {
    const [next, keys] = await node.scan(cursor, 'COUNT', Math.min(1000, sampleKeys));
    cursor = next;
    examined += keys.length;
    found += keys.filter((key) => FAMILY_KEY.test(key)).length;
  } while (cursor !== '0' && examined < sampleKeys);
  if (cursor === '0' || examined === 0) return { count: found, exact: true };
  return { count: (found / examined) * (await node.dbsize()), exact: false };
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
  const { s, c, sc, a, ca, lu, x, ie, h, ua, ip, si } = stored;
  if (typeof s !== 'string' || typeof c !== 'string' || typeof sc !== 'string' || typeof a !== 'string' || typeof h !== 'string') return null;
  if (typeof ca !== 'number' || typeof lu !== 'number' || typeof x !== 'number' || typeof ie !== 'number') return null;
  if (!(now < ie && now < x)) return null;
  const family: Family = Object.freeze({
    subject: s,
    clientId: c,
    scope: sc,
    audience: a,
    ...(si && typeof si.i === 'string' && typeof si.t === 'number' && Array.isArray(si.m) && { signIn: signInOf({ sid: si.i, authTime: si.t, amr: si.m }) }),
    id,
    createdAt: ca,
    lastUsedAt: lu,
    expiresAt: x,
    userAgent: typeof ua === 'string' && ua !== '' ? ua : undefined,
    ip: typeof ip === 'string' && ip !== '' ? ip : undefined,
  });
  return { family, hash: h };
}
