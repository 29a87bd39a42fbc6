import type { Cluster, Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { adaptLimiter } from '../shared/rate-limiter.js';
import type { RateLimitBackend } from '../types.js';
import { createRedisAttemptLedger } from './login-attempts.js';

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
      ),
  };
}
