/**
 * In-process access-token denylist (the embedded dev default): jti → expiry, checked
 * against the injected clock, expired entries swept at most once a minute.
 */
import type { Clock } from '../../clock.js';
import type { AccessTokenDenylist } from '../types.js';

const MAX_JTI_LENGTH = 256;
const SWEEP_EVERY_MS = 60_000;

export function isJti(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_JTI_LENGTH;
}

/** Denying is a security action: bad arguments are a bug to surface, not to ignore. */
export function assertJti(jti: unknown, expiresAt: unknown): asserts jti is string {
  if (!isJti(jti)) throw new TypeError(`jti must be a non-empty string of at most ${MAX_JTI_LENGTH} characters`);
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw new TypeError('expiresAt must be a number of ms since the epoch');
}

export function createMemoryDenylist({ clock }: { clock: Clock }): AccessTokenDenylist {
  const denied = new Map<string, number>();
  let nextSweepAt = clock.now() + SWEEP_EVERY_MS;

  function sweep(now: number): void {
    if (now < nextSweepAt) return;
    nextSweepAt = now + SWEEP_EVERY_MS;
    for (const [jti, until] of denied) if (now >= until) denied.delete(jti);
  }

  return {
    async ping() {},

    async deny(jti: string, expiresAt: number) {
      assertJti(jti, expiresAt);
      const now = clock.now();
      sweep(now);
      if (expiresAt <= now) return;
      denied.set(jti, expiresAt);
    },

    async isDenied(jti: string) {
      if (!isJti(jti)) return false;
      const until = denied.get(jti);
      return until !== undefined && clock.now() < until;
    },
  };
}
