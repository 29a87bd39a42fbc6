/** The attempt ledger in process memory (embedded dev mode): same contract as the Redis one, each step synchronous. */
import type { AttemptBudget, AttemptLedger, AttemptReservation } from '../types.js';

interface Entries {
  /** id → when it stops counting. */
  readonly failures: Map<string, number>;
  readonly holds: Map<string, number>;
}

export function createMemoryAttemptLedger(now: () => number = Date.now): AttemptLedger {
  const byKey = new Map<string, Entries>();

  function entries(key: string, at: number): Entries {
    let found = byKey.get(key);
    if (!found) byKey.set(key, (found = { failures: new Map(), holds: new Map() }));
    for (const map of [found.failures, found.holds]) for (const [id, until] of map) if (until <= at) map.delete(id);
    return found;
  }

  function check(budgets: readonly AttemptBudget[], at: number): AttemptReservation {
    let blocked = false;
    let inFlight = true;
    let retryAfterMs = 0;
    const full: string[] = [];
    for (const budget of budgets) {
      const { failures, holds } = entries(budget.key, at);
      if (failures.size + holds.size < budget.points) continue;
      blocked = true;
      full.push(budget.key);
      if (failures.size >= budget.points) {
        inFlight = false;
        const expiries = [...failures.values()].sort((x, y) => x - y);
        retryAfterMs = Math.max(retryAfterMs, expiries[failures.size - budget.points]! - at);
      }
    }
    return blocked ? { admitted: false, retryAfterMs, inFlight, full } : { admitted: true };
  }

  return {
    async reserve(id, budgets, holdMs) {
      const at = now();
      const result = check(budgets, at);
      if (result.admitted) for (const budget of budgets) entries(budget.key, at).holds.set(id, at + holdMs);
      return result;
    },
    async settle(id, budgets, outcome) {
      const at = now();
      const filled: string[] = [];
      for (const budget of budgets) {
        const found = entries(budget.key, at);
        found.holds.delete(id);
        if (outcome === 'failed') {
          found.failures.set(id, at + budget.windowMs);
          if (found.failures.size >= budget.points) filled.push(budget.key);
        }
        if (outcome === 'succeeded' && budget.resetOnSuccess) found.failures.clear();
        if (found.failures.size === 0 && found.holds.size === 0) byKey.delete(budget.key);
      }
      return filled;
    },
  };
}
