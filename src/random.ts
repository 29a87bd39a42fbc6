import { randomFillSync, randomUUID } from 'node:crypto';

/** The one place randomness comes from; tests that need determinism inject their own. */
export interface Random {
  /** `bytes` cryptographically random bytes, base64url without padding. */
  token(bytes: number): string;
  uuid(): string;
}

/**
 * Bytes from the CSPRNG, fetched 4 KiB at a time: one `randomFillSync` per request (the
 * jti, a refresh token's secret) showed in profiles of the token endpoint. Node's own
 * `randomUUID` buffers its entropy the same way. Every byte is handed out once.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

function randomToken(bytes: number): string {
  if (bytes > POOL_SIZE / 4) return randomFillSync(Buffer.alloc(bytes)).toString('base64url');
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString('base64url', offset, offset + bytes);
  offset += bytes;
  return token;
}

export const cryptoRandom: Random = {
  token: randomToken,
  uuid: () => randomUUID(),
};
