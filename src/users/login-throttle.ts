/**
 * Failed-login throttling, shared through the rate-limit backend (Redis in production,
 * so the limits hold across instances). Policy, each a sliding window of failures:
 *
 * - account+IP: `LOGIN_RATE_LIMIT` failures (default 5 per 15 min); the next attempt is
 *   429 with `Retry-After` until the oldest failure leaves the window. A successful login
 *   forgets them.
 * - IP across accounts: `LOGIN_IP_RATE_LIMIT` failures (credential stuffing).
 * - account across IPs: `LOGIN_ACCOUNT_RATE_LIMIT` failures; when spent the account is
 *   locked, for its owner too, until failures leave the window. An attacker who keeps
 *   failing keeps the account locked.
 *
 * Each attempt reserves a point of every budget before the password is checked (one
 * script call per Redis slot), so concurrent wrong passwords cannot all slip past a check
 * made before any of them failed; then settles (one more): a failure keeps the point, a
 * success or an attempt that could not be judged (a store unavailable: 503) gives it back.
 * An attempt refused only because others are in flight waits for them, on any instance,
 * so right passwords do not refuse each other. A reservation whose request never learnt
 * the answer (Redis stalled, the request timed out) is released as soon as Redis answers
 * again, and lapses by itself after HOLD_MS in any case.
 *
 * Accounts are keyed by a hash of the normalised email, so Redis holds no addresses, and
 * unknown emails are counted exactly like known ones (no enumeration through 429s).
 */
import { hash, randomUUID } from 'node:crypto';
import type { RateBudget } from '../config.js';
import { clientNetwork } from '../net.js';
import { StoreUnavailableError, type AttemptBudget, type RateLimitBackend } from '../stores/types.js';
import { budgetOf, createAttemptGuard } from './budgets.js';

export interface LoginBudgets {
  readonly accountIp: RateBudget;
  readonly ip: RateBudget;
  readonly account: RateBudget;
}

const REFUSED = 'too many failed login attempts, try again later';

export function createLoginThrottle(limits: RateLimitBackend, budgets: LoginBudgets, options: { holdMs?: number } = {}) {
  const guard = createAttemptGuard(limits.attempts(), options);
  const budgetsFor = (email: string, address: string): AttemptBudget[] => {
    const accountKey = hash('sha256', email, 'base64url').slice(0, 22);
    const network = clientNetwork(address);
    return [
      budgetOf(`login:account-ip:${accountKey}:${network}`, budgets.accountIp, { resetOnSuccess: true }),
      budgetOf(`login:ip:${network}`, budgets.ip),
      budgetOf(`login:account:${accountKey}`, budgets.account),
    ];
  };

  return {
    /**
     * One attempt from start to end: admitted (a point of every budget reserved, or 429),
     * then `check` runs; when it resolves the attempt succeeded and its points come back,
     * when it throws StoreUnavailableError they come back too (nothing was judged), when it
     * throws anything else the attempt counts as a failure.
     */
    async judge<T>(email: string, address: string, check: () => Promise<T>): Promise<T> {
      const attempt = budgetsFor(email, address);
      const id = randomUUID();
      await guard.admit(id, attempt, REFUSED);
      let result: T;
      try {
        result = await check();
      } catch (err) {
        const outcome = err instanceof StoreUnavailableError ? 'released' : 'failed';
        await guard.settle(id, attempt, outcome, outcome).catch(() => undefined);
        throw err;
      }
      await guard.settle(id, attempt, 'succeeded');
      return result;
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
