import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { StoreUnavailableError, type RateLimiter, type RateLimitState } from '../types.js';

/**
 * Adapts a rate-limiter-flexible limiter to our RateLimiter contract: a spent budget is a
 * state (`allowed: false`), a store failure is StoreUnavailableError (callers fail closed).
 */
export function adaptLimiter(limiter: RateLimiterAbstract, points: number): RateLimiter {
  const state = (res: RateLimiterRes | null, allowed: boolean): RateLimitState => ({
    allowed,
    remaining: res ? Math.max(0, res.remainingPoints) : points,
    retryAfterMs: allowed ? 0 : Math.max(1, res?.msBeforeNext ?? 0),
  });
  const unavailable = (cause: unknown): never => {
    throw new StoreUnavailableError('rate-limit', { cause });
  };

  return {
    async consume(key, cost = 1) {
      try {
        return state(await limiter.consume(key, cost), true);
      } catch (thrown) {
        if (thrown instanceof RateLimiterRes) return state(thrown, false);
        return unavailable(thrown);
      }
    },
    async reset(key) {
      await limiter.delete(key).catch(unavailable);
    },
  };
}
