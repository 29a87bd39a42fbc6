/**
 * In-process pushed authorization requests (the embedded dev default): `take` checks and
 * deletes with no await in between, so a request is handed out once. Expiry follows the
 * injected clock; expired entries are dropped when touched and swept at most once a minute.
 */
import type { Clock } from '../../clock.js';
import { createExpiringMap } from './expiring-map.js';
import { assertParameters, assertStoreId, assertTtl, isStoreId } from '../shared/authorization.js';
import { DuplicateKeyError, type PushedRequestStore } from '../types.js';

interface Entry {
  readonly clientId: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly expiresAt: number;
}

export function createMemoryPushedRequestStore({ clock }: { clock: Clock }): PushedRequestStore {
  const entries = createExpiringMap<Entry>(clock, (entry) => entry.expiresAt);

  return {
    async ping() {},

    async save(requestId, clientId, parameters, ttlMs) {
      assertStoreId(requestId, 'requestId');
      if (typeof clientId !== 'string' || clientId === '') throw new TypeError('clientId must be a non-empty string');
      assertParameters(parameters);
      assertTtl(ttlMs);
      const now = clock.now();
      if (entries.get(requestId)) throw new DuplicateKeyError('request_uri');
      entries.set(requestId, { clientId, parameters: Object.freeze({ ...parameters }), expiresAt: now + ttlMs });
    },

    async take(requestId, clientId) {
      if (!isStoreId(requestId)) return null;
      const entry = entries.get(requestId);
      if (!entry || entry.clientId !== clientId) return null;
      entries.delete(requestId);
      return entry.parameters;
    },
  };
}
