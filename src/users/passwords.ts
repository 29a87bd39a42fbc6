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
  const work = params.memoryCost * params.timeCost;

  /**
   * A wrong password against a hash made with cheaper, older parameters (before an
   * ARGON2_* raise; such hashes are upgraded only at the account's next good login) must
   * still cost what an unknown email costs, or dormant accounts could be told apart by
   * timing. argon2's time is about memory × passes, so the missing part is spent as extra
   * passes over the configured memory, or one pass over less.
   */
  async function padFrom(hash: string): Promise<void> {
    const missing = work - (storedWork(hash) ?? 0);
    if (missing <= work / 10) return;
    const timeCost = Math.ceil(missing / params.memoryCost);
    const memoryCost = Math.max(Math.round(missing / timeCost), 8 * params.parallelism);
    await argon2.hash('padding', { type: argon2.argon2id, memoryCost, timeCost, parallelism: params.parallelism }).catch(() => undefined);
  }

  return {
    hash: (password) => argon2.hash(password, options),
    async verify(hash, password) {
      let ok = false;
      try {
        ok = await argon2.verify(hash, password);
      } catch {
        // An unparseable hash: the padding below spends the full work.
      }
      if (!ok) await padFrom(hash);
      return { ok, needsRehash: ok && argon2.needsRehash(hash, params) };
    },
    async verifyDummy(password) {
      await argon2.verify(dummyHash, password).catch(() => false);
    },
  };
}

/** m × t from an argon2 PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`, in any order), if it has them. */
function storedWork(hash: string): number | undefined {
  const fields = /^\$argon2(?:id|i|d)\$(?:v=\d+\$)?([^$]+)\$/.exec(hash)?.[1];
  if (!fields) return undefined;
  const values = new Map(fields.split(',').map((field) => field.split('=') as [string, string]));
  const m = Number(values.get('m'));
  const t = Number(values.get('t'));
  return Number.isSafeInteger(m) && Number.isSafeInteger(t) && m > 0 && t > 0 ? m * t : undefined;
}
