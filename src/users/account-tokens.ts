/**
 * The tokens of mailed links (email verification, password reset, email change): 256 random
 * bits, prefixed by the user id so the one record per user and purpose can be found; only a
 * SHA-256 of the secret is stored. A token opens only while it is the newest of its purpose
 * for its user, unexpired (by the injected clock) and unused; the secret is compared in
 * constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Random } from '../random.js';
import type { AccountTokenStore } from '../stores/types.js';

export type AccountTokenPurpose = 'email-verify' | 'password-reset' | 'email-change';

/** 32 bytes = 256 bits of randomness. */
const SECRET_BYTES = 32;
const TOKEN_PATTERN = /^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/;

const digest = (secret: string) => createHash('sha256').update(secret).digest('base64url');

export interface OpenedToken {
  readonly userId: string;
  readonly binding: string;
  /** The stored hash, for `take`. */
  readonly hash: string;
}

export function createAccountTokens({ store, clock, random }: { store: AccountTokenStore; clock: Clock; random: Random }) {
  return {
    /** A new token for `userId`; the previous one of the same purpose stops working. */
    async issue(purpose: AccountTokenPurpose, userId: string, binding: string, ttlMs: number): Promise<string> {
      const secret = random.token(SECRET_BYTES);
      await store.put(purpose, userId, { hash: digest(secret), binding, expiresAt: clock.now() + ttlMs }, ttlMs);
      return `${userId}.${secret}`;
    },

    /** What a live token stands for, without using it up; null for anything else (malformed, wrong, superseded, used, expired). */
    async open(purpose: AccountTokenPurpose, token: string): Promise<OpenedToken | null> {
      const match = TOKEN_PATTERN.exec(token);
      if (!match) return null;
      const [, userId = '', secret = ''] = match;
      const record = await store.get(purpose, userId);
      if (!record) return null;
      const given = Buffer.from(digest(secret));
      const stored = Buffer.from(record.hash);
      if (given.length !== stored.length || !timingSafeEqual(given, stored)) return null;
      if (clock.now() >= record.expiresAt) return null;
      return { userId, binding: record.binding, hash: record.hash };
    },

    /** Uses up an opened token: true for exactly one caller. */
    take: (purpose: AccountTokenPurpose, opened: OpenedToken): Promise<boolean> => store.take(purpose, opened.userId, opened.hash),
  };
}

export type AccountTokens = ReturnType<typeof createAccountTokens>;
