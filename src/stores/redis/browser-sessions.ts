/**
 * Browser sign-in sessions in Redis (standalone or Cluster).
 *
 * Keys:
 * - `bs:{<id>}` string: the session as JSON `{u: user id, h: SHA-256 of the cookie value,
 *   at: auth time, amr: JSON, ca: created, lu: last seen, x: absolute expiry, ie: idle
 *   expiry, cl: JSON list of the clients that received tokens in it (absent: none)}`; key
 *   TTL = ie - now, renewed by `touch`. (JSON inside JSON: cjson writes an empty list as `{}`.)
 * - `bs:u:{<userId>}` sorted set: session ids scored by absolute expiry, pruned on every
 *   read and write. It is in another slot than the sessions, so it is written by its own
 *   script; it is advisory, like the family index (redis/families.ts): written before the
 *   session, and every id read from it is checked against the session (live, same user).
 *
 * Times are Redis's (TIME inside each script): one clock for every instance. `authTime` is
 * the caller's, as given.
 */
import {
  assertNewSession,
  assertSessionOptions,
  BROWSER_SESSION_STORE,
  hashSessionCookie,
  mintSessionCookie,
  sessionIdOf,
  type BrowserSessionStoreOptions,
} from '../shared/authorization.js';
import type { BrowserSession, BrowserSessionStore } from '../types.js';
import { defineScript, guardRedis, pingRedis, runScript, type RedisClient } from './connection.js';

const sessionKey = (id: string): string => `bs:{${id}}`;
const userKey = (userId: string): string => `bs:u:{${userId}}`;
const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

interface StoredSession {
  u: string;
  h: string;
  at: number;
  amr: string;
  ca: number;
  lu: number;
  x: number;
  cl?: string;
}

/** KEYS: session. ARGV: user id, cookie hash, auth time, amr JSON, idle ms, max ms. Replies the stored JSON, or nil if the id exists. */
const CREATE = defineScript(`#!lua
${NOW_MS}
local x = now + tonumber(ARGV[6])
local ie = math.min(now + tonumber(ARGV[5]), x)
local entry = cjson.encode({u = ARGV[1], h = ARGV[2], at = tonumber(ARGV[3]), amr = ARGV[4], ca = now, lu = now, x = x, ie = ie})
if not redis.call('SET', KEYS[1], entry, 'NX', 'PX', string.format('%d', ie - now)) then return false end
return entry
`);

/**
 * KEYS: session. ARGV: cookie hash ('' = skip the check: listing by id), idle ms ('' = read
 * only). Replies the live session's JSON (after the touch), or nil.
 */
const OPEN = defineScript(`#!lua
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local s = cjson.decode(raw)
${NOW_MS}
if now >= s.ie or now >= s.x then return false end
if ARGV[1] ~= '' and s.h ~= ARGV[1] then return false end
if ARGV[2] == '' then return raw end
s.lu = now
s.ie = math.min(now + tonumber(ARGV[2]), s.x)
local updated = cjson.encode(s)
redis.call('SET', KEYS[1], updated, 'PX', string.format('%d', s.ie - now))
return updated
`);

/** KEYS: session. ARGV: expected user id ('' = any). Deletes a live session; replies its user id, or nil. */
const DELETE = defineScript(`#!lua
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local s = cjson.decode(raw)
if ARGV[1] ~= '' and s.u ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
${NOW_MS}
if now >= s.ie or now >= s.x then return false end
return s.u
`);

/**
 * KEYS: session. ARGV: client id, '1' to add it or '' to remove it. Changes the client list
 * of a live session, keeping its TTL; replies 1, or 0 when there is no live session.
 */
const SET_CLIENT = defineScript(`#!lua
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local s = cjson.decode(raw)
${NOW_MS}
if now >= s.ie or now >= s.x then return 0 end
local clients = {}
for _, id in ipairs(s.cl and cjson.decode(s.cl) or {}) do
  if id == ARGV[1] then
    if ARGV[2] == '1' then return 1 end
  else
    table.insert(clients, id)
  end
end
if ARGV[2] == '1' then table.insert(clients, ARGV[1]) end
if #clients == 0 then s.cl = nil else s.cl = cjson.encode(clients) end
redis.call('SET', KEYS[1], cjson.encode(s), 'PX', string.format('%d', s.ie - now))
return 1
`);

/** KEYS: user index. ARGV: session id, max ms. */
const INDEX_ADD = defineScript(`#!lua
${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], string.format('%d', tonumber(last[2]) - now))
return 1
`);

/** KEYS: user index. Replies the ids not past their absolute expiry. */
const INDEX_LIST = defineScript(`#!lua
${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`);

export function createRedisBrowserSessionStore(options: BrowserSessionStoreOptions & { redis: RedisClient }): BrowserSessionStore {
  assertSessionOptions(options);
  const { redis, random, idleMs, maxMs } = options;
  const run = (script: typeof CREATE, key: string, args: (string | number)[]) => guardRedis(BROWSER_SESSION_STORE, () => runScript(redis, script, [key], args));

  async function open(cookieValue: string, touch: boolean): Promise<BrowserSession | null> {
    const id = sessionIdOf(cookieValue);
    if (id === undefined) return null;
    return toSession(id, await run(OPEN, sessionKey(id), [hashSessionCookie(cookieValue), touch ? idleMs : '']));
  }

  async function listIds(userId: string): Promise<string[]> {
    const reply = await run(INDEX_LIST, userKey(userId), []);
    return Array.isArray(reply) ? reply.filter((id): id is string => typeof id === 'string' && SESSION_ID.test(id)) : [];
  }

  async function deleteOne(id: string, userId: string): Promise<string | null> {
    const reply = await run(DELETE, sessionKey(id), [userId]);
    if (typeof reply !== 'string') return null;
    // The index is advisory: failing to tidy it loses nothing.
    await redis.zrem(userKey(reply), id).catch(() => undefined);
    return reply;
  }

  return {
    ping: () => pingRedis(redis),

    async create(data) {
      assertNewSession(data);
      const { id, cookieValue } = mintSessionCookie(random);
      // Index first: a session that exists is then always found by deleteAllOfUser.
      await run(INDEX_ADD, userKey(data.userId), [id, maxMs]);
      const reply = await run(CREATE, sessionKey(id), [data.userId, hashSessionCookie(cookieValue), data.authTime, JSON.stringify(data.amr), idleMs, maxMs]);
      const session = toSession(id, reply);
      if (!session) throw new Error('browser session id collision');
      return { session, cookieValue };
    },

    get: (cookieValue) => open(cookieValue, false),
    touch: (cookieValue) => open(cookieValue, true),

    async delete(sessionId) {
      return typeof sessionId === 'string' && SESSION_ID.test(sessionId) && (await deleteOne(sessionId, '')) !== null;
    },

    async addClient(sessionId, clientId) {
      if (typeof sessionId !== 'string' || !SESSION_ID.test(sessionId)) return false;
      return (await run(SET_CLIENT, sessionKey(sessionId), [clientId, '1'])) === 1;
    },

    async removeClient(sessionId, clientId) {
      if (typeof sessionId === 'string' && SESSION_ID.test(sessionId)) await run(SET_CLIENT, sessionKey(sessionId), [clientId, '']);
    },

    async listByUser(userId) {
      if (typeof userId !== 'string' || userId === '') return [];
      const ids = await listIds(userId);
      const found = await Promise.all(ids.map(async (id) => toSession(id, await run(OPEN, sessionKey(id), ['', '']))));
      return found.filter((session): session is BrowserSession => session?.userId === userId).sort((a, b) => b.lastSeenAt - a.lastSeenAt);
    },

    async deleteAllOfUser(userId, exceptSessionId) {
      if (typeof userId !== 'string' || userId === '') return 0;
      const ids = (await listIds(userId)).filter((id) => id !== exceptSessionId);
      const deleted = await Promise.all(ids.map((id) => deleteOne(id, userId)));
      return deleted.filter((entry) => entry !== null).length;
    },
  };
}

function toSession(id: string, raw: unknown): BrowserSession | null {
  if (typeof raw !== 'string') return null;
  const stored = JSON.parse(raw) as StoredSession;
  return Object.freeze({
    id,
    userId: stored.u,
    authTime: stored.at,
    amr: Object.freeze(JSON.parse(stored.amr) as string[]),
    createdAt: stored.ca,
    lastSeenAt: stored.lu,
    expiresAt: stored.x,
    clientIds: Object.freeze(stored.cl === undefined ? [] : (JSON.parse(stored.cl) as string[])),
  });
}
