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
 * Every budget is spent before the password is checked (see `attempt`); `judge` runs one
 * attempt from start to end and is what the user service calls.
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

  async function attempt(email: string, address: string): Promise<void> {
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
  }

  async function succeeded(email: string, address: string): Promise<void> {
    const key = keys(email, address);
    await Promise.all([accountIp.reset(key.accountIp), ip.refund(key.ip), account.refund(key.account)]);
  }

  /** Per account+IP key, the attempts this process is judging; each promise resolves when its attempt is judged. */
  const judging = new Map<string, Set<Promise<void>>>();

  /**
   * `attempt`, except that an attempt refused while this process is judging others for the
   * same account+IP waits for one of them and tries again. A right password refunds its
   * point, so concurrent right passwords do not refuse each other; a wrong one keeps it,
   * so once they have spent the budget the waiting attempt is refused all the same.
   */
  async function admit(email: string, address: string, key: string): Promise<void> {
    for (;;) {
      try {
        return await attempt(email, address);
      } catch (err) {
        const others = judging.get(key);
        if (!(err instanceof TooManyRequestsError) || others === undefined) throw err;
        await Promise.race(others);
      }
    }
  }

  return {
    /**
     * Spends one attempt from every budget *before* the password is checked, so that
     * concurrent attempts cannot all slip past a check made before any of them failed;
     * throws 429 when any budget was already spent. Call `succeeded` after a correct
     * password to refund the attempt and reset the account+IP counter.
     */
    attempt,
    succeeded,
    /**
     * One attempt from start to end: admitted (see `admit`), then `check` runs; when it
     * resolves the attempt succeeded and is refunded, when it throws it stays counted as
     * a failure.
     */
    async judge<T>(email: string, address: string, check: () => Promise<T>): Promise<T> {
      const key = keys(email, address).accountIp;
      await admit(email, address, key);
      let judged!: () => void;
      const done = new Promise<void>((resolve) => (judged = resolve));
      const others = judging.get(key) ?? new Set();
      judging.set(key, others.add(done));
      try {
        const result = await check();
        await succeeded(email, address);
        return result;
      } finally {
        others.delete(done);
        if (others.size === 0 && judging.get(key) === others) judging.delete(key);
        judged();
      }
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
