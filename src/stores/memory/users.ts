import type { Clock } from '../../clock.js';
import { cryptoRandom, type Random } from '../../random.js';
import { DuplicateKeyError, type NewUser, type UserRecord, type UserStore } from '../types.js';

interface StoredUser {
  readonly id: string;
  email: string;
  emailVerified: boolean;
  name: string | undefined;
  roles: readonly string[];
  disabled: boolean;
  readonly createdAt: number;
  passwordHash: string;
  passwordChangedAt: number;
  passwordChangedBy: string | undefined;
  signOuts: number;
  updatedAt: number;
}

/**
 * Users in process memory, for the embedded dev mode. Each method runs without awaiting,
 * so a check-then-insert cannot interleave with another call: of concurrent creates of
 * one email exactly one succeeds.
 */
export function createMemoryUserStore({ clock, random = cryptoRandom }: { clock: Clock; random?: Random }): UserStore {
  const byId = new Map<string, StoredUser>();
  const idByEmail = new Map<string, string>();

  return {
    async create(user: NewUser) {
      if (idByEmail.has(user.email)) throw new DuplicateKeyError('email');
      const now = clock.now();
      const stored: StoredUser = {
        id: random.uuid(),
        email: user.email,
        name: user.name,
        roles: Object.freeze([...(user.roles ?? [])]),
        disabled: false,
        emailVerified: user.emailVerified ?? false,
        createdAt: now,
        passwordHash: user.passwordHash,
        passwordChangedAt: now,
        passwordChangedBy: undefined,
        signOuts: 0,
        updatedAt: now,
      };
      byId.set(stored.id, stored);
      idByEmail.set(stored.email, stored.id);
      return toRecord(stored);
    },

    async findById(id) {
      const stored = byId.get(id);
      return stored ? toRecord(stored) : null;
    },

    async findByEmail(email) {
      const id = idByEmail.get(email);
      const stored = id === undefined ? undefined : byId.get(id);
      return stored ? toRecord(stored) : null;
    },

    async findCredentials(email) {
      const id = idByEmail.get(email);
      const stored = id === undefined ? undefined : byId.get(id);
      return stored ? { user: toRecord(stored), passwordHash: stored.passwordHash } : null;
    },

    async getPasswordHash(id) {
      return byId.get(id)?.passwordHash ?? null;
    },

    async setPasswordHash(id, passwordHash, { expected, change }) {
      const stored = byId.get(id);
      if (!stored || stored.passwordHash !== expected) return false;
      stored.passwordHash = passwordHash;
      if (change) {
        stored.passwordChangedAt = change.at.getTime();
        stored.passwordChangedBy = change.by;
      }
      stored.updatedAt = clock.now();
      return true;
    },

    async recordSignOut(id) {
      const stored = byId.get(id);
      if (stored) stored.signOuts += 1;
    },

    async markEmailVerified(id, email) {
      const stored = byId.get(id);
      if (!stored || stored.email !== email) return false;
      stored.emailVerified = true;
      stored.updatedAt = clock.now();
      return true;
    },

    async changeEmail(id, from, to) {
      const stored = byId.get(id);
      if (!stored || stored.email !== from) return false;
      const holder = idByEmail.get(to);
      if (holder !== undefined && holder !== id) throw new DuplicateKeyError('email');
      idByEmail.delete(from);
      idByEmail.set(to, id);
      stored.email = to;
      stored.emailVerified = true;
      stored.updatedAt = clock.now();
      return true;
    },

    async update(id, changes) {
      const stored = byId.get(id);
      if (!stored) return null;
      if (changes.roles !== undefined) stored.roles = Object.freeze([...changes.roles]);
      if (changes.disabled !== undefined) stored.disabled = changes.disabled;
      if (changes.name !== undefined) stored.name = changes.name;
      stored.updatedAt = clock.now();
      return toRecord(stored);
    },

    async delete(id) {
      const stored = byId.get(id);
      if (!stored) return false;
      byId.delete(id);
      idByEmail.delete(stored.email);
      return true;
    },

    async listByEmailPrefix(prefix, { limit, after }) {
      const emails = [...idByEmail.keys()].filter((email) => email.startsWith(prefix) && (after === undefined || email > after)).sort();
      return emails.slice(0, Math.max(0, limit)).map((email) => toRecord(byId.get(idByEmail.get(email)!)!));
    },

    async ping() {},
  };
}

/** A fresh record each time: callers can neither see the hash nor mutate the stored user. */
function toRecord(stored: StoredUser): UserRecord {
  return {
    id: stored.id,
    email: stored.email,
    name: stored.name,
    roles: stored.roles,
    disabled: stored.disabled,
    emailVerified: stored.emailVerified,
    passwordChangedAt: new Date(stored.passwordChangedAt),
    passwordChangedBy: stored.passwordChangedBy,
    signOuts: stored.signOuts,
    createdAt: new Date(stored.createdAt),
    updatedAt: new Date(stored.updatedAt),
  };
}
