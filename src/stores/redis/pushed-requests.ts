/**
 * Pushed authorization requests in Redis (standalone or Cluster): one key per request,
 * `par:{<requestId>}`, a JSON string `{c: client id, p: the parameters as JSON, x: expiry}`,
 * key TTL = the request's lifetime. Expiry is decided by Redis's clock (TIME in the
 * scripts), one clock for every instance; see authorization-codes.ts for `#!lua`.
 */
import { assertParameters, assertStoreId, assertTtl, isStoreId, PUSHED_REQUEST_STORE } from '../shared/authorization.js';
import { DuplicateKeyError, type PushedRequestStore } from '../types.js';
import { defineScript, guardRedis, pingRedis, runScript, type RedisClient } from './connection.js';

const requestKey = (requestId: string): string => `par:{${requestId}}`;

/** KEYS: request. ARGV: client id, parameters JSON, ttl ms. Replies 1, or 0 when the key exists. */
const SAVE = defineScript(`#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entry = cjson.encode({c = ARGV[1], p = ARGV[2], x = now + tonumber(ARGV[3])})
if redis.call('SET', KEYS[1], entry, 'NX', 'PX', ARGV[3]) then return 1 end
return 0
`);

/** KEYS: request. ARGV: client id. Replies the parameters JSON and deletes the request, or nil (nothing changed). */
const TAKE = defineScript(`#!lua
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local e = cjson.decode(raw)
if e.c ~= ARGV[1] then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= e.x then return false end
redis.call('DEL', KEYS[1])
return e.p
`);

export function createRedisPushedRequestStore({ redis }: { redis: RedisClient }): PushedRequestStore {
  return {
    ping: () => pingRedis(redis),

    async save(requestId, clientId, parameters, ttlMs) {
      assertStoreId(requestId, 'requestId');
      if (typeof clientId !== 'string' || clientId === '') throw new TypeError('clientId must be a non-empty string');
      assertParameters(parameters);
      assertTtl(ttlMs);
      const reply = await guardRedis(PUSHED_REQUEST_STORE, () =>
        runScript(redis, SAVE, [requestKey(requestId)], [clientId, JSON.stringify(parameters), ttlMs]),
      );
      if (reply !== 1) throw new DuplicateKeyError('request_uri');
    },

    async take(requestId, clientId) {
      if (!isStoreId(requestId) || typeof clientId !== 'string') return null;
      const reply = await guardRedis(PUSHED_REQUEST_STORE, () => runScript(redis, TAKE, [requestKey(requestId)], [clientId]));
      return typeof reply === 'string' ? Object.freeze(JSON.parse(reply) as Record<string, string>) : null;
    },
  };
}
