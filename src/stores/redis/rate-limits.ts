import type { Cluster, Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { adaptLimiter } from '../shared/rate-limiter.js';
import type { RateLimitBackend } from '../types.js';
import { defineScript, runScript } from './connection.js';
import { createRedisAttemptLedger } from './login-attempts.js';

/**
 * KEYS: one counter (rate-limiter-flexible keeps the points spent in the window as an
 * integer, with the window as its TTL). ARGV: points to give back. Gives back at most
 * what the window spent, in one step: a window that ends between a read and a write
 * would otherwise have the write create the counter in credit.
 */
const REFUND = defineScript(`
local spent = tonumber(redis.call('GET', KEYS[1]))
if not spent or spent <= 0 then return 0 end
local back = math.min(tonumber(ARGV[1]), spent)
redis.call('DECRBY', KEYS[1], back)
return back
`);

/**
 * Counters in Redis, so a limit holds across every instance of the server. Each counter
 * is one key, so this works unchanged on a Redis Cluster.
 */
export function createRedisRateLimits(redis: Redis | Cluster): RateLimitBackend {
  const attempts = createRedisAttemptLedger(redis);
  return {
    attempts: () => attempts,
    limiter: (options) =>
      adaptLimiter(
        new RateLimiterRedis({
          storeClient: redis,
          keyPrefix: `rl:${options.keyPrefix}`,
          points: options.points,
          duration: options.durationSec,
          blockDuration: options.blockDurationSec ?? 0,
          rejectIfRedisNotReady: true,
        }),
        options.points,
        (storeKey, cost) => runScript(redis, REFUND, [storeKey], [cost]),
      ),
  };
}
