/**
 * In-process refresh-token families: the embedded dev default. Same contract as the Redis
 * adapter; the rotation decision runs between two awaits-free lines, so it is one
 * synchronous step that no concurrent call can interleave with. Nothing survives a
 * restart, and expiry follows the injected clock (expired entries are dropped when
 * touched, and swept at most once a minute).
 */
import { isFamilyId } from '../../tokens/refresh-token.js';
import {
  assertHashes,
  assertNewFamily,
  checkExpectations,
  clampUseContext,
  ENDED_SESSIONS_TTL_MS,
  familyPolicy,
  signInOf,
  type FamilyStoreOptions,
} from '../family-policy.js';
import {
  FamilyRevokedError,
  SignInEndedError,
  type Family,
  type FamilyGrant,
  type FamilyStore,
  type NewFamily,
  type RotateResult,
  type RotationExpectations,
  type RotationHashes,
  type UseContext,
} from '../types.js';

interface FamilyRecord {
  readonly grant: FamilyGrant;
  readonly id: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  lastUsedAt: number;
  /** min(lastUsedAt + idle, expiresAt). */
  idleExpiresAt: number;
  currentHash: string;
  previousHash: string | undefined;
  rotatedAt: number;
  userAgent: string;
  ip: string;
}

const SWEEP_EVERY_MS = 60_000;
const INVALID: RotateResult = Object.freeze({ outcome: 'invalid' });

export function createMemoryFamilyStore(options: FamilyStoreOptions): FamilyStore {
  const { clock } = options;
  const { idleMs, maxMs, graceMs, markerMs, maxPerSubject } = familyPolicy(options);
  const families = new Map<string, FamilyRecord>();
  /** familyId → when the marker ends. */
  const revoked = new Map<string, number>();
  const bySubject = new Map<string, Set<string>>();
  /** subject → when `revokeAll` last ended its sessions, and until when that is kept. */
  const ended = new Map<string, { at: number; until: number }>();
  let nextSweepAt = clock.now() + SWEEP_EVERY_MS;

  function sweep(now: number): void {
    if (now < nextSweepAt) return;
    nextSweepAt = now + SWEEP_EVERY_MS;
    for (const record of families.values()) if (now >= record.idleExpiresAt) drop(record);
    for (const [id, until] of revoked) if (now >= until) revoked.delete(id);
    for (const [subject, stamp] of ended) if (now >= stamp.until) ended.delete(subject);
  }

  function drop(record: FamilyRecord): void {
    families.delete(record.id);
    const ids = bySubject.get(record.grant.subject);
    ids?.delete(record.id);
    if (ids?.size === 0) bySubject.delete(record.grant.subject);
  }

  function live(familyId: string, now: number): FamilyRecord | undefined {
    const record = families.get(familyId);
    if (record && now >= record.idleExpiresAt) {
      drop(record);
      return undefined;
    }
    return record;
  }

  function revokeRecord(record: FamilyRecord, now: number): void {
    drop(record);
    revoked.set(record.id, now + markerMs);
  }

  function view(record: FamilyRecord): Family {
    return Object.freeze({
      ...record.grant,
      id: record.id,
      createdAt: record.createdAt,
      lastUsedAt: record.lastUsedAt,
      expiresAt: record.expiresAt,
      userAgent: record.userAgent || undefined,
      ip: record.ip || undefined,
    });
  }

  return {
    async ping() {},

    async create(family: NewFamily, context: UseContext) {
      assertNewFamily(family);
      const now = clock.now();
      sweep(now);
      const { id, subject, clientId, scope, audience } = family;
      const revokedUntil = revoked.get(id);
      if (revokedUntil !== undefined && now < revokedUntil) throw new FamilyRevokedError();
      const stamp = ended.get(subject);
      if (family.signedInAt !== undefined && stamp && now < stamp.until && stamp.at > family.signedInAt) throw new SignInEndedError();
      const signIn = signInOf(family.signIn);
      const { userAgent, ip } = clampUseContext(context);
      const expiresAt = now + maxMs;
      const record: FamilyRecord = {
        grant: Object.freeze({ subject, clientId, scope, audience, ...(signIn && { signIn }) }),
        id,
        createdAt: now,
        expiresAt,
        lastUsedAt: now,
        idleExpiresAt: Math.min(now + idleMs, expiresAt),
        currentHash: family.tokenHash,
        previousHash: undefined,
        rotatedAt: 0,
        userAgent,
        ip,
      };
      families.set(id, record);
      const ids = bySubject.get(subject) ?? new Set<string>();
      // Over the cap, the oldest go (a Set iterates in creation order).
      const endedByCap: string[] = [];
      for (const old of ids) {
        if (ids.size < maxPerSubject) break;
        const existing = live(old, now);
        if (existing) {
          revokeRecord(existing, now);
          endedByCap.push(old);
        } else ids.delete(old);
      }
      ids.add(id);
      bySubject.set(subject, ids);
      return Object.freeze({ ...view(record), endedByCap: Object.freeze(endedByCap) });
    },

    async rotate(familyId: string, hashes: RotationHashes, context: UseContext, expected: RotationExpectations = {}): Promise<RotateResult> {
      assertHashes(hashes);
      if (!isFamilyId(familyId)) return INVALID;
      const now = clock.now();
      sweep(now);
      const record = live(familyId, now);
      if (!record) return INVALID;
      if (expected.clientId !== undefined && record.grant.clientId !== expected.clientId) return INVALID;
      const refusal = checkExpectations(record.grant, expected);
      if (refusal === 'withdrawn') {
        const family = view(record);
        revokeRecord(record, now);
        return { outcome: 'withdrawn', familyId: record.id, family };
      }
      if (refusal) return refusal;
      const { presented, next } = hashes;
      if (presented !== record.currentHash) {
        // A retry asks for the successor the rotation already made current: nothing
        // changes, so the window is never extended. A presentation stamped before the
        // rotation (the clock went back) is never one.
        const retry = presented === record.previousHash && next === record.currentHash && now >= record.rotatedAt && now < record.rotatedAt + graceMs;
        if (retry) return { outcome: 'rotated', family: view(record) };
        // The caller verified the token's tag, so we minted it for this family, and it is
        // not the current one: it was issued and has since been rotated away.
        const family = view(record);
        revokeRecord(record, now);
        return { outcome: 'reused', familyId: record.id, family };
      }
      record.previousHash = record.currentHash;
      record.rotatedAt = now;
      const { userAgent, ip } = clampUseContext(context);
      record.currentHash = next;
      record.lastUsedAt = now;
      record.idleExpiresAt = Math.min(now + idleMs, record.expiresAt);
      record.userAgent = userAgent;
      record.ip = ip;
      return { outcome: 'rotated', family: view(record) };
    },

    async current(familyId: string, tokenHash: string) {
      if (!isFamilyId(familyId)) return null;
      const record = live(familyId, clock.now());
      return record && record.currentHash === tokenHash ? view(record) : null;
    },

    async get(familyId: string) {
      if (!isFamilyId(familyId)) return null;
      const record = live(familyId, clock.now());
      return record ? view(record) : null;
    },

    async listBySubject(subject: string) {
      const now = clock.now();
      sweep(now);
      const result: Family[] = [];
      for (const id of bySubject.get(subject) ?? []) {
        const record = live(id, now);
        if (record) result.push(view(record));
      }
      return result.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
    },

    async listByClient(clientId: string) {
      const now = clock.now();
      sweep(now);
      const result: Family[] = [];
      for (const id of [...families.keys()]) {
        const record = live(id, now);
        if (record && record.grant.clientId === clientId) result.push(view(record));
      }
      return result;
    },

    async countLive() {
      const now = clock.now();
      sweep(now);
      let count = 0;
      for (const id of families.keys()) if (live(id, now)) count += 1;
      return { count, exact: true };
    },

    async revoke(familyId: string, options?: { readonly ahead?: boolean }) {
      if (!isFamilyId(familyId)) return false;
      const now = clock.now();
      const record = live(familyId, now);
      if (record) {
        revokeRecord(record, now);
        return true;
      }
      if (!options?.ahead) return false;
      const marked = revoked.get(familyId);
      if (marked !== undefined && now < marked) return false;
      revoked.set(familyId, now + markerMs);
      return true;
    },

    async revokeAll(subject: string, exceptFamilyId?: string) {
      const now = clock.now();
      ended.set(subject, { at: Math.max(now, ended.get(subject)?.at ?? now), until: now + ENDED_SESSIONS_TTL_MS });
      let count = 0;
      for (const id of [...(bySubject.get(subject) ?? [])]) {
        if (id === exceptFamilyId) continue;
        const record = live(id, now);
        if (!record) continue;
        revokeRecord(record, now);
        count += 1;
      }
      return count;
    },

    async isRevoked(familyId: string) {
      if (!isFamilyId(familyId)) return false;
      const until = revoked.get(familyId);
      return until !== undefined && clock.now() < until;
    },
  };
}
