/**
 * Failed-login throttling, shared through the rate-limit backend (Redis in production,
 * so the limits hold across instances). Policy:
 *
 * - account+IP: `LOGIN_RATE_LIMIT` failures (default 5 per 15 min); the next attempt is
 *   429 with `Retry-After` until the window ends. A successful login resets it.
 * - IP across accounts: `LOGIN_IP_RATE_LIMIT` failures (credential stuffing).
 * - account across IPs: `LOGIN_ACCOUNT_RATE_LIMIT` failures; when spent the account is
 *   locked only for the rest of that window, so an attacker can delay a victim but never
 *   lock the account for good.
 *
 * Accounts are keyed by a hash of the normalised email, so Redis holds no addresses, and
 * unknown emails are counted exactly like known ones (no enumeration through 429s).
 */
import { createHash } from 'node:crypto';
import type { RateBudget } from '../config.js';
import { TooManyRequestsError } from '../errors.js';
import type { RateLimitBackend, RateLimiter } from '../stores/types.js';

export interface LoginBudgets {
  readonly accountIp: RateBudget;
  readonly ip: RateBudget;
  readonly account: RateBudget;
}

export function createLoginThrottle(limits: RateLimitBackend, budgets: LoginBudgets) {
  const make = (name: string, budget: RateBudget): RateLimiter =>
    limits.limiter({ keyPrefix: `login:${name}`, points: budget.points, durationSec: budget.durationSec });
  const accountIp = make('account-ip', budgets.accountIp);
  const ip = make('ip', budgets.ip);
  const account = make('account', budgets.account);
  const keys = (email: string, address: string) => {
    const accountKey = createHash('sha256').update(email).digest('base64url').slice(0, 22);
    return { accountIp: `${accountKey}:${address}`, ip: address, account: accountKey };
  };

  return {
    /** Throws 429 when any budget for this attempt is spent; spends nothing. */
    async check(email: string, address: string): Promise<void> {
      const key = keys(email, address);
      const states = await Promise.all([accountIp.peek(key.accountIp), ip.peek(key.ip), account.peek(key.account)]);
      const blocked = states.filter((state) => !state.allowed);
      if (blocked.length > 0) {
        throw new TooManyRequestsError(Math.max(...blocked.map((state) => state.retryAfterMs)) / 1000, 'too many failed login attempts, try again later');
      }
    },
    async recordFailure(email: string, address: string): Promise<void> {
      const key = keys(email, address);
      await Promise.all([accountIp.consume(key.accountIp), ip.consume(key.ip), account.consume(key.account)]);
    },
    async recordSuccess(email: string, address: string): Promise<void> {
      await accountIp.reset(keys(email, address).accountIp);
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
