import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { StoreUnavailableError, type RateLimiter, type RateLimitState } from '../types.js';

/**
 * Adapts a rate-limiter-flexible limiter to our RateLimiter contract: a spent budget is a
 * state (`allowed: false`), a store failure is StoreUnavailableError (callers fail closed).
 */
export function adaptLimiter(
  limiter: RateLimiterAbstract,
  points: number,
  /**
   * An atomic refund on the backend (see `refund` below), given the limiter's own key;
   * without it the refund reads the counter, then rewards, which is atomic only where
   * both resolve without yielding to timers (the in-process store).
   */
  atomicRefund?: (storeKey: string, cost: number) => Promise<unknown>,
): RateLimiter {
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
    async refund(key, cost = 1) {
      // A refund returns what a consume in the current window took. Once that window has
      // ended (the key is gone) there is nothing to return: rewarding would create the key
      // in credit and open the next window with a point more than the budget.
      if (atomicRefund) {
        await atomicRefund(limiter.getKey(key), cost).catch(unavailable);
        return;
      }
      const current = await limiter.get(key).catch(unavailable);
      if (current === null || current.consumedPoints <= 0) return;
      await limiter.reward(key, Math.min(cost, current.consumedPoints)).catch(unavailable);
    },
  };
}
