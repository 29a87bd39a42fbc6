/**
 * argon2id password hashing with parameters from config (OWASP minimum by default:
 * m=19 MiB, t=2, p=1). `verify` reports when a stored hash used other parameters, so
 * the login path can re-hash transparently.
 */
import argon2 from 'argon2';

export interface Argon2Params {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** `ok` false for a wrong password or an unparseable hash; never throws for those. */
  verify(hash: string, password: string): Promise<{ ok: boolean; needsRehash: boolean }>;
  /**
   * Spends the same work as a real verification against a fixed dummy hash, so that a
   * login for an unknown account takes as long as one with a wrong password.
   */
  verifyDummy(password: string): Promise<void>;
}

/** NIST SP 800-63B §5.1.1.2: at least 8 characters, no composition rules; 128 bounds the work. */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;

export async function createPasswordHasher(params: Argon2Params): Promise<PasswordHasher> {
  const options = { type: argon2.argon2id, ...params } as const;
  const dummyHash = await argon2.hash('dummy password for unknown accounts', options);

  return {
    hash: (password) => argon2.hash(password, options),
    async verify(hash, password) {
      try {
        const ok = await argon2.verify(hash, password);
        return { ok, needsRehash: ok && argon2.needsRehash(hash, params) };
      } catch {
        return { ok: false, needsRehash: false };
      }
    },
    async verifyDummy(password) {
      await argon2.verify(dummyHash, password).catch(() => false);
    },
  };
}
