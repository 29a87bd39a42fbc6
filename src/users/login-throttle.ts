/**
 * Failed-login throttling, shared through the rate-limit backend (Redis in production,
 * so the limits hold across instances). Policy:
 *
 * - account+IP: `LOGIN_RATE_LIMIT` failures (default 5 per 15 min); the next attempt is
 *   429 with `Retry-After` until the window ends. A successful login resets it.
 * - IP across accounts: `LOGIN_IP_RATE_LIMIT` failures (credential stuffing).
 * - account across IPs: `LOGIN_ACCOUNT_RATE_LIMIT` failures; when spent the account is
 *   locked, for its owner too, for the rest of that window. No lock outlives its window,
 *   but an attacker who spends the budget again each window keeps the account locked.
 *
 * Accounts are keyed by a hash of the normalised email, so Redis holds no addresses, and
 * unknown emails are counted exactly like known ones (no enumeration through 429s).
 */
import { hash } from 'node:crypto';
import type { RateBudget } from '../config.js';
import { TooManyRequestsError } from '../errors.js';
import { clientNetwork } from '../net.js';
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
    const accountKey = hash('sha256', email, 'base64url').slice(0, 22);
    const network = clientNetwork(address);
    return { accountIp: `${accountKey}:${network}`, ip: network, account: accountKey };
  };

  return {
    /**
     * Spends one attempt from every budget *before* the password is checked, so that
     * concurrent attempts cannot all slip past a check made before any of them failed;
     * throws 429 when any budget was already spent. Call `succeeded` after a correct
     * password to refund the attempt and reset the account+IP counter.
     */
    async attempt(email: string, address: string): Promise<void> {
      const key = keys(email, address);
      // A refused attempt costs nothing: hammering a blocked account+IP must not drain the
      // account-wide budget and lock the owner out elsewhere.
      await spendEveryBudget(
        [
          { limiter: accountIp, key: key.accountIp },
          { limiter: ip, key: key.ip },
          { limiter: account, key: key.account },
        ],
        'too many failed login attempts, try again later',
      );
    },
    async succeeded(email: string, address: string): Promise<void> {
      const key = keys(email, address);
      await Promise.all([accountIp.reset(key.accountIp), ip.refund(key.ip), account.refund(key.account)]);
    },
  };
}

/** One point of one budget: the limiter and the key it counts under. */
export interface BudgetKey {
  readonly limiter: RateLimiter;
  readonly key: string;
}

/**
 * Spends one point from every budget *before* the work they guard, so that concurrent
 * requests cannot all pass a check made before any of them counted. When any budget was
 * already spent, refunds them all (a refused request costs nothing) and throws 429 with
 * the longest wait.
 */
export async function spendEveryBudget(budgets: readonly BudgetKey[], message: string): Promise<void> {
  const states = await Promise.all(budgets.map(({ limiter, key }) => limiter.consume(key)));
  const blocked = states.filter((state) => !state.allowed);
  if (blocked.length === 0) return;
  await Promise.all(budgets.map(({ limiter, key }) => limiter.refund(key)));
  throw new TooManyRequestsError(Math.max(...blocked.map((state) => state.retryAfterMs)) / 1000, message);
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
