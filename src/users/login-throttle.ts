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
import { setTimeout as sleep } from 'node:timers/promises';
import type { RateBudget } from '../config.js';
import { TooManyRequestsError } from '../errors.js';
import { clientNetwork } from '../net.js';
import { StoreUnavailableError, type AttemptBudget, type AttemptLedger, type RateLimitBackend, type RateLimiter } from '../stores/types.js';

export interface LoginBudgets {
  readonly accountIp: RateBudget;
  readonly ip: RateBudget;
  readonly account: RateBudget;
}

/** Longest a reservation holds its points unsettled: beyond any judged attempt (argon2 plus the stores' timeouts). */
const HOLD_MS = 30_000;
/** How long an attempt waits for others in flight before it is refused after all. */
const MAX_WAIT_MS = 5_000;
const WAIT_STEP_MS = 25;
/** Retrying the release of an attempt the store could not take. */
const RELEASE_RETRY_MS = 250;
const REFUSED = 'too many failed login attempts, try again later';

export function createLoginThrottle(limits: RateLimitBackend, budgets: LoginBudgets, options: { holdMs?: number } = {}) {
  const ledger: AttemptLedger = limits.attempts();
  const holdMs = options.holdMs ?? HOLD_MS;
  const windowMs = (budget: RateBudget) => budget.durationSec * 1000;
  const budgetsFor = (email: string, address: string): AttemptBudget[] => {
    const accountKey = hash('sha256', email, 'base64url').slice(0, 22);
    const network = clientNetwork(address);
    return [
      { key: `login:account-ip:${accountKey}:${network}`, points: budgets.accountIp.points, windowMs: windowMs(budgets.accountIp), resetOnSuccess: true },
      { key: `login:ip:${network}`, points: budgets.ip.points, windowMs: windowMs(budgets.ip) },
      { key: `login:account:${accountKey}`, points: budgets.account.points, windowMs: windowMs(budgets.account) },
    ];
  };

  /** Releases in the background until the store takes it (sent after the reservation, so it runs after it). */
  function releaseLater(id: string, attempt: readonly AttemptBudget[]): void {
    const deadline = Date.now() + holdMs;
    void (async () => {
      while (Date.now() < deadline) {
        try {
          return await ledger.settle(id, attempt, 'released');
        } catch {
          await sleep(RELEASE_RETRY_MS);
        }
      }
    })();
  }

  async function admit(id: string, attempt: readonly AttemptBudget[]): Promise<void> {
    const deadline = Date.now() + MAX_WAIT_MS;
    for (;;) {
      let reservation;
      try {
        reservation = await ledger.reserve(id, attempt, holdMs);
      } catch (err) {
        // The reservation may still run when the store answers again: take it back then.
        releaseLater(id, attempt);
        throw err;
      }
      if (reservation.admitted) return;
      if (!reservation.inFlight || Date.now() >= deadline) throw new TooManyRequestsError(Math.max(1000, reservation.retryAfterMs) / 1000, REFUSED);
      await sleep(WAIT_STEP_MS + Math.random() * WAIT_STEP_MS);
    }
  }

  async function settle(id: string, attempt: readonly AttemptBudget[], outcome: 'succeeded' | 'failed' | 'released'): Promise<void> {
    try {
      await ledger.settle(id, attempt, outcome);
    } catch (err) {
      releaseLater(id, attempt);
      throw err;
    }
  }

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
      await admit(id, attempt);
      let result: T;
      try {
        result = await check();
      } catch (err) {
        await settle(id, attempt, err instanceof StoreUnavailableError ? 'released' : 'failed').catch(() => undefined);
        throw err;
      }
      await settle(id, attempt, 'succeeded');
      return result;
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
