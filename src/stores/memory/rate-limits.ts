import { RateLimiterMemory } from 'rate-limiter-flexible';
import { adaptLimiter } from '../shared/rate-limiter.js';
import type { RateLimitBackend } from '../types.js';
import { createMemoryAttemptLedger } from './login-attempts.js';

/** In-process counters: for the embedded dev mode only (they do not span instances). */
export function createMemoryRateLimits(): RateLimitBackend {
  const attempts = createMemoryAttemptLedger();
  return {
    attempts: () => attempts,
    limiter: (options) =>
      adaptLimiter(
        new RateLimiterMemory({
          keyPrefix: options.keyPrefix,
          points: options.points,
          duration: options.durationSec,
          blockDuration: options.blockDurationSec ?? 0,
        }),
        options.points,
      ),
  };
}
