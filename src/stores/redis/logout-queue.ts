/**
 * Back-channel logout deliveries in Redis (standalone or Cluster): a sorted set
 * `bcl:{q}:due` of delivery ids scored by when each is due (a lease moves the score
 * forward), and a hash `bcl:{q}:jobs` of id → the delivery as JSON. A sorted set rather
 * than a plain list: retries come back after a backoff, and a leased delivery whose
 * worker died comes back by itself when its lease ends. Both keys share one hash tag, so
 * every script runs on one slot of a Cluster.
 */
import type { LogoutDelivery, LogoutQueue } from '../types.js';
import { defineScript, guardRedis, pingRedis, runScript, type RedisClient } from './connection.js';

const STORE = 'logout-queue';
const DUE = 'bcl:{q}:due';
const JOBS = 'bcl:{q}:jobs';

/** KEYS: due, jobs. ARGV: id, json, due at. */
const PUT = defineScript(`#!lua
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`);

/** KEYS: due, jobs. ARGV: now, limit, lease ms. Replies the leased deliveries' JSON. */
const TAKE = defineScript(`#!lua
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
local leased = string.format('%d', tonumber(ARGV[1]) + tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local job = redis.call('HGET', KEYS[2], id)
  if job then
    redis.call('ZADD', KEYS[1], leased, id)
    table.insert(out, job)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`);

/** KEYS: due, jobs. ARGV: id. */
const ACK = defineScript(`#!lua
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`);

export function createRedisLogoutQueue({ redis }: { redis: RedisClient }): LogoutQueue {
  const run = (script: ReturnType<typeof defineScript>, args: (string | number)[]) => guardRedis(STORE, () => runScript(redis, script, [DUE, JOBS], args));
  const put = async (delivery: LogoutDelivery, dueAt: number) => {
    await run(PUT, [delivery.id, JSON.stringify(delivery), Math.floor(dueAt)]);
  };
  return {
    ping: () => pingRedis(redis),
    push: put,
    retry: put,
    async take(now, limit, leaseMs) {
      const reply = (await run(TAKE, [Math.floor(now), limit, leaseMs])) as string[];
      return reply.map((json) => Object.freeze(JSON.parse(json) as LogoutDelivery));
    },
    async ack(id) {
      await run(ACK, [id]);
    },
  };
}
