/**
 * What the memory and Redis family stores share: their options, and the limits on what a
 * family records. The rotation decision itself lives in each adapter (TypeScript in one,
 * Lua in the other), and the contract suite holds them to the same behaviour.
 */
import type { Clock } from '../clock.js';
import { familyIdTag, isFamilyId, isTokenHash, subjectTag } from '../tokens/refresh-token.js';
import type { FamilyGrant, NewFamily, RotateResult, RotationExpectations, RotationHashes, UseContext } from './types.js';

export interface FamilyStoreOptions {
  readonly clock: Clock;
  /** Seconds: idle lifetime of a family, extended by each rotation (`REFRESH_TOKEN_TTL`). */
  readonly refreshTokenTtl: number;
  /** Seconds: absolute lifetime of a family, never extended (`REFRESH_FAMILY_MAX_TTL`). */
  readonly familyMaxTtl: number;
  /** Seconds after a rotation in which the rotated token, presented again, gets the same successor; 0 = off (`REFRESH_REUSE_GRACE`). */
  readonly reuseGrace: number;
  /** Seconds a revoked family stays `isRevoked`: `accessTokenTtl + clockSkew`, so that its last access token has expired. */
  readonly revokedMarkerTtl: number;
  /**
   * Live families one subject may hold; creating one more revokes the oldest. Default 100:
   * a successful login is not throttled, so without a bound one account could fill the
   * store with sessions.
   */
  readonly maxFamiliesPerSubject?: number;
}

export interface FamilyPolicy {
  readonly idleMs: number;
  readonly maxMs: number;
  readonly graceMs: number;
  readonly markerMs: number;
  readonly maxPerSubject: number;
}

export const FAMILY_STORE = 'refresh-token families';

export const DEFAULT_MAX_FAMILIES_PER_SUBJECT = 100;

/**
 * How long `revokeAll`'s stamp of a subject's ended sessions is kept: far longer than any
 * sign-in takes from checking its user to creating its family (a login, a code's minute).
 */
export const ENDED_SESSIONS_TTL_MS = 24 * 60 * 60_000;

function maxPerSubject(value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError('maxFamiliesPerSubject must be a whole number ≥ 1');
  return value;
}

export function familyPolicy(options: FamilyStoreOptions): FamilyPolicy {
  const ms = (name: string, seconds: number, min: number): number => {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < min) {
      throw new RangeError(`${name} must be a number of seconds ≥ ${min}`);
    }
    return Math.round(seconds * 1000);
  };
  const idleMs = ms('refreshTokenTtl', options.refreshTokenTtl, 0.001);
  const maxMs = ms('familyMaxTtl', options.familyMaxTtl, 0.001);
  if (maxMs < idleMs) throw new RangeError('familyMaxTtl must be at least refreshTokenTtl');
  return {
    idleMs,
    maxMs,
    graceMs: ms('reuseGrace', options.reuseGrace, 0),
    markerMs: ms('revokedMarkerTtl', options.revokedMarkerTtl, 0.001),
    maxPerSubject: maxPerSubject(options.maxFamiliesPerSubject ?? DEFAULT_MAX_FAMILIES_PER_SUBJECT),
  };
}

/**
 * Bounds what a request can make us store: the User-Agent header is the client's to
 * choose, and a family must stay well under 1 KB however it is used.
 */
const MAX_USER_AGENT_BYTES = 256;
/** An IPv6 address with a zone id fits. */
const MAX_IP_BYTES = 64;

export function clampUseContext(context: UseContext): { userAgent: string; ip: string } {
  return {
    userAgent: truncateUtf8(typeof context.userAgent === 'string' ? context.userAgent : '', MAX_USER_AGENT_BYTES),
    ip: truncateUtf8(typeof context.ip === 'string' ? context.ip : '', MAX_IP_BYTES),
  };
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  // Back up to a character boundary rather than leave half a character behind.
  let end = maxBytes;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}

/** A grant is built by our own services; a malformed one is a bug, not bad input. */
function assertGrant(grant: FamilyGrant): void {
  for (const field of ['subject', 'clientId', 'scope', 'audience'] as const) {
    if (typeof grant?.[field] !== 'string') throw new TypeError(`FamilyGrant.${field} must be a string`);
  }
  if (grant.subject === '') throw new TypeError('FamilyGrant.subject must not be empty');
  const { signIn } = grant;
  if (signIn !== undefined && (typeof signIn.sid !== 'string' || !Number.isFinite(signIn.authTime) || !Array.isArray(signIn.amr)))
    throw new TypeError('FamilyGrant.signIn needs sid, authTime and amr');
}

/** The family's sign-in as stored: a frozen copy, or nothing. */
export const signInOf = (signIn: FamilyGrant['signIn']) =>
  signIn === undefined ? undefined : Object.freeze({ sid: signIn.sid, authTime: signIn.authTime, amr: Object.freeze([...signIn.amr]) });

/** Ids and hashes come from the token layer; a malformed one is a bug, not bad input. */
export function assertNewFamily(family: NewFamily): void {
  assertGrant(family);
  if (!isFamilyId(family.id)) throw new TypeError('NewFamily.id must be a family id');
  // The Redis adapter keeps a subject's families in its index's slot by this tag.
  if (familyIdTag(family.id) !== subjectTag(family.subject)) throw new TypeError("NewFamily.id must start with its subject's tag");
  if (!isTokenHash(family.tokenHash)) throw new TypeError('NewFamily.tokenHash must be a token hash');
  if (family.signedInAt !== undefined && !Number.isFinite(family.signedInAt)) throw new TypeError('NewFamily.signedInAt must be a number of ms');
}

export function assertHashes(hashes: RotationHashes): void {
  if (!isTokenHash(hashes?.presented) || !isTokenHash(hashes.next)) throw new TypeError('RotationHashes must hold two token hashes');
}

/**
 * RotationExpectations after the client binding, for the memory adapter (the Redis
 * adapter's script does the same in Lua): a refusal, `withdrawn`, or undefined to go on.
 */
export function checkExpectations(grant: FamilyGrant, expected: RotationExpectations): Extract<RotateResult, { outcome: 'refused' }> | 'withdrawn' | undefined {
  const granted = grant.scope === '' ? [] : grant.scope.split(' ');
  for (const token of expected.scope ?? []) {
    if (!granted.includes(token)) return { outcome: 'refused', reason: 'scope_exceeded', value: token };
    if (expected.clientScopes && !expected.clientScopes.includes(token)) return { outcome: 'refused', reason: 'scope_lost', value: token };
  }
  if (expected.audience !== undefined && expected.audience !== grant.audience) return { outcome: 'refused', reason: 'target', value: grant.audience };
  if (expected.audiences && !expected.audiences.includes(grant.audience)) return 'withdrawn';
  return undefined;
}
