import type { AccountTokenRecord, AccountTokenStore } from '../types.js';
import { defineScript, guardRedis, runScript, type RedisClient } from './connection.js';

const STORE = 'account tokens';
const key = (purpose: string, userId: string) => `acct:${purpose}:${userId}`;

/** KEYS: the record. ARGV: the hash the caller holds. Deletes only that record, in one step. */
const TAKE = defineScript(`
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
if cjson.decode(value).hash ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`);

/** Account tokens in Redis: one key per purpose and user (so any one key is one slot on a Cluster), JSON with a PX TTL. */
export function createRedisAccountTokenStore({ redis }: { redis: RedisClient }): AccountTokenStore {
  return {
    async put(purpose, userId, record, ttlMs) {
      await guardRedis(STORE, () => redis.set(key(purpose, userId), JSON.stringify(record), 'PX', Math.max(1, Math.ceil(ttlMs))));
    },
    async get(purpose, userId) {
      const value = await guardRedis(STORE, () => redis.get(key(purpose, userId)));
      return value === null ? null : (JSON.parse(value) as AccountTokenRecord);
    },
    async take(purpose, userId, hash) {
      return (await guardRedis(STORE, () => runScript(redis, TAKE, [key(purpose, userId)], [hash]))) === 1;
    },
  };
}
