/**
 * Client secrets. Generated secrets carry 256 bits, so a single SHA-256 is a sound
 * stored form (no dictionary to attack) and keeps client authentication cheap: argon2 on
 * every client_credentials request would cap the token endpoint's throughput.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { Random } from '../random.js';

export function generateClientSecret(random: Random): string {
  return random.token(32);
}

export function hashClientSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/** Constant-time comparison of the presented secret's hash with the stored one. */
export function clientSecretMatches(presented: string, storedHash: string | undefined): boolean {
  const expected = Buffer.from(storedHash ?? '', 'hex');
  // One-shot hash (Node >= 20.12): no Hash object per request on the token endpoint.
  const actual = hash('sha256', presented, 'buffer');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
