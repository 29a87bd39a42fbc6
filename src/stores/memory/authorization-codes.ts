/**
 * In-process authorization codes (the embedded dev default). Each decision runs with no
 * await inside it, so it is one synchronous step no concurrent call can interleave with.
 * Expiry follows the injected clock; expired entries are dropped when touched and swept
 * at most once a minute.
 */
import type { Clock } from '../../clock.js';
import { createExpiringMap } from './expiring-map.js';
import {
  assertCodeRecord,
  assertIssued,
  assertStoreId,
  assertTtl,
  codeRecordOf,
  DEFAULT_CONSUMED_RETENTION_MS,
  issuedOf,
  isStoreId,
} from '../shared/authorization.js';
import { DuplicateKeyError, type AuthorizationCodeRecord, type AuthorizationCodeStore, type ConsumeCodeResult, type IssuedFromCode } from '../types.js';

interface Entry {
  readonly record: AuthorizationCodeRecord;
  readonly expiresAt: number;
  /** expiresAt + retention: the entry is forgotten then. */
  readonly keepUntil: number;
  state: 'live' | 'consumed' | 'reused';
  issued: IssuedFromCode | undefined;
}

const INVALID: ConsumeCodeResult = Object.freeze({ outcome: 'invalid' });

export function createMemoryAuthorizationCodeStore(options: { clock: Clock; consumedRetentionMs?: number }): AuthorizationCodeStore {
  const { clock } = options;
  const retentionMs = options.consumedRetentionMs ?? DEFAULT_CONSUMED_RETENTION_MS;
  assertTtl(retentionMs, 'consumedRetentionMs');
  const entries = createExpiringMap<Entry>(clock, (entry) => entry.keepUntil);

  return {
    async ping() {},

    async save(codeHash, record, ttlMs) {
      assertStoreId(codeHash, 'codeHash');
      assertCodeRecord(record);
      assertTtl(ttlMs);
      const now = clock.now();
      if (entries.get(codeHash)) throw new DuplicateKeyError('code');
      entries.set(codeHash, { record: codeRecordOf(record), expiresAt: now + ttlMs, keepUntil: now + ttlMs + retentionMs, state: 'live', issued: undefined });
    },

    async consume(codeHash, expected = {}) {
      if (!isStoreId(codeHash)) return INVALID;
      const now = clock.now();
      const entry = entries.get(codeHash);
      if (!entry) return INVALID;
      if (expected.clientId !== undefined && entry.record.clientId !== expected.clientId) return INVALID;
      if (entry.state === 'live') {
        if (now >= entry.expiresAt) return INVALID;
        entry.state = 'consumed';
        return { outcome: 'consumed', record: entry.record };
      }
      entry.state = 'reused';
      return entry.issued ? { outcome: 'reused', record: entry.record, issued: entry.issued } : { outcome: 'reused', record: entry.record };
    },

    async recordIssued(codeHash, issued) {
      assertIssued(issued);
      if (!isStoreId(codeHash)) return 'unknown';
      const entry = entries.get(codeHash);
      if (!entry || entry.state === 'live' || entry.issued) return 'unknown';
      entry.issued = issuedOf(issued);
      return entry.state === 'reused' ? 'reused' : 'recorded';
    },
  };
}
