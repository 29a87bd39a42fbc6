/**
 * In-process pushed authorization requests (the embedded dev default): `take` checks and
 * deletes with no await in between, so a request is handed out once. Expiry follows the
 * injected clock; expired entries are dropped when touched and swept at most once a minute.
 */
import type { Clock } from '../../clock.js';
import { assertParameters, assertStoreId, assertTtl, isStoreId } from '../shared/authorization.js';
import { DuplicateKeyError, type PushedRequestStore } from '../types.js';

interface Entry {
  readonly clientId: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly expiresAt: number;
}

const SWEEP_EVERY_MS = 60_000;

export function createMemoryPushedRequestStore({ clock }: { clock: Clock }): PushedRequestStore {
  const entries = new Map<string, Entry>();
  let nextSweepAt = clock.now() + SWEEP_EVERY_MS;

  function find(requestId: string, now: number): Entry | undefined {
    if (now >= nextSweepAt) {
      nextSweepAt = now + SWEEP_EVERY_MS;
      for (const [id, entry] of entries) if (now >= entry.expiresAt) entries.delete(id);
    }
    const entry = entries.get(requestId);
    if (entry && now >= entry.expiresAt) {
      entries.delete(requestId);
      return undefined;
    }
    return entry;
  }

  return {
    async ping() {},

    async save(requestId, clientId, parameters, ttlMs) {
      assertStoreId(requestId, 'requestId');
      if (typeof clientId !== 'string' || clientId === '') throw new TypeError('clientId must be a non-empty string');
      assertParameters(parameters);
      assertTtl(ttlMs);
      const now = clock.now();
      if (find(requestId, now)) throw new DuplicateKeyError('request_uri');
      entries.set(requestId, { clientId, parameters: Object.freeze({ ...parameters }), expiresAt: now + ttlMs });
    },

    async take(requestId, clientId) {
      if (!isStoreId(requestId)) return null;
      const entry = find(requestId, clock.now());
      if (!entry || entry.clientId !== clientId) return null;
      entries.delete(requestId);
      return entry.parameters;
    },
  };
}
