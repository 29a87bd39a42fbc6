import { randomBytes, randomUUID } from 'node:crypto';

/** The one place randomness comes from; tests that need determinism inject their own. */
export interface Random {
  /** `bytes` cryptographically random bytes, base64url without padding. */
  token(bytes: number): string;
  uuid(): string;
}

export const cryptoRandom: Random = {
  token: (bytes) => randomBytes(bytes).toString('base64url'),
  uuid: () => randomUUID(),
};
