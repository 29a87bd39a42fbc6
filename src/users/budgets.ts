/**
 * Budgets spent before the work they guard, on the attempts ledger (the login throttle,
 * registrations, the requests that send mail). A point of every budget is reserved, all or
 * none, before the work, so concurrent requests cannot all pass a check made before any of
 * them counted; then it is settled: kept (a failure, a registration, a mail request) or
 * given back (a success the budget does not count, a refusal).
 *
 * A request that could not be judged because a store was unavailable (answered 503) gives
 * back what it reserved, even when Redis stalled and the reservation only ran once it
 * resumed: the release is sent after the reservation on the same connection and retried
 * until the store takes it, and an unsettled reservation lapses after `holdMs` anyway.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TooManyRequestsError } from '../errors.js';
import { StoreUnavailableError, type AttemptBudget, type AttemptLedger } from '../stores/types.js';
import type { RateBudget } from '../config.js';

/** Longest a reservation holds its points unsettled: beyond any judged attempt (argon2 plus the stores' timeouts). */
export const HOLD_MS = 30_000;
/** How long an attempt waits for others in flight before it is refused after all. */
const MAX_WAIT_MS = 5_000;
const WAIT_STEP_MS = 25;
/** Retrying a settlement the store could not take. */
const RETRY_MS = 250;

export type Outcome = 'succeeded' | 'failed' | 'released';

/** A budget as the ledger counts it: `points` per sliding window, under `key`. */
export const budgetOf = (key: string, budget: RateBudget, options: { resetOnSuccess?: boolean } = {}): AttemptBudget => ({
  key,
  points: budget.points,
  windowMs: budget.durationSec * 1000,
  ...(options.resetOnSuccess ? { resetOnSuccess: true } : {}),
});

export function createAttemptGuard(ledger: AttemptLedger, options: { holdMs?: number } = {}) {
  const holdMs = options.holdMs ?? HOLD_MS;

  /** Settles in the background until the store takes it (sent after the reservation, so it runs after it). */
  function settleLater(id: string, attempt: readonly AttemptBudget[], outcome: Outcome): void {
    const deadline = Date.now() + holdMs;
    void (async () => {
      while (Date.now() < deadline) {
        try {
          return await ledger.settle(id, attempt, outcome);
        } catch {
          await sleep(RETRY_MS);
        }
      }
    })();
  }

  /** Reserves a point of every budget for `id`, waiting a moment when only attempts in flight fill one; else 429 with `refused`. */
  async function admit(id: string, attempt: readonly AttemptBudget[], refused: string): Promise<void> {
    const deadline = Date.now() + MAX_WAIT_MS;
    for (;;) {
      let reservation;
      try {
        reservation = await ledger.reserve(id, attempt, holdMs);
      } catch (err) {
        // The reservation may still run when the store answers again: take it back then.
        settleLater(id, attempt, 'released');
        throw err;
      }
      if (reservation.admitted) return;
      if (!reservation.inFlight || Date.now() >= deadline) throw new TooManyRequestsError(Math.max(1000, reservation.retryAfterMs) / 1000, refused);
      await sleep(WAIT_STEP_MS + Math.random() * WAIT_STEP_MS);
    }
  }

  /**
   * Settles `attempt`; when the store cannot take it, settles it later with `fallback`
   * ('released' by default: the request is answered 503 and must cost nothing) and throws.
   */
  async function settle(id: string, attempt: readonly AttemptBudget[], outcome: Outcome, fallback: Outcome = 'released'): Promise<readonly string[]> {
    try {
      return await ledger.settle(id, attempt, outcome);
    } catch (err) {
      settleLater(id, attempt, fallback);
      throw err;
    }
  }

  return {
    admit,
    settle,

    /**
     * Runs `work` once a point of every budget is reserved (else 429 with `refused`). When
     * it resolves, every point is kept except those of the budgets it names in `giveBack`;
     * when it throws StoreUnavailableError (503) every point is given back; when it throws
     * anything else (a refusal the budget counts) every point is kept. Once the work is done
     * its answer stands: a settlement the store cannot take now is retried in the background.
     */
    async spend<T>(budgets: readonly AttemptBudget[], refused: string, work: () => Promise<{ value: T; giveBack?: readonly AttemptBudget[] }>): Promise<T> {
      const id = randomUUID();
      await admit(id, budgets, refused);
      const settled = (part: readonly AttemptBudget[], outcome: Outcome) =>
        part.length === 0 ? undefined : settle(id, part, outcome, outcome).catch(() => undefined);
      let result: { value: T; giveBack?: readonly AttemptBudget[] };
      try {
        result = await work();
      } catch (err) {
        await settled(budgets, err instanceof StoreUnavailableError ? 'released' : 'failed');
        throw err;
      }
      const giveBack = result.giveBack ?? [];
      await Promise.all([
        settled(
          budgets.filter((budget) => !giveBack.includes(budget)),
          'failed',
        ),
        settled(giveBack, 'released'),
      ]);
      return result.value;
    },
  };
}

export type AttemptGuard = ReturnType<typeof createAttemptGuard>;
