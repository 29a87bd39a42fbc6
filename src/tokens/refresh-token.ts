/**
 * Refresh-token format: `<familyId>.<secret>.<tag>`, all base64url without padding.
 *
 * - `familyId` names the family (also the `sid` of its access tokens), so it is public:
 *   4 characters of its subject's SHA-256 (`subjectTag`, so that a store can keep all of
 *   a subject's families together: one Redis Cluster slot) and 128 random bits.
 * - `secret` is 32 random bytes: the 256 bits of unguessability.
 * - `tag` is HMAC-SHA256(serverKey, familyId "." secret) truncated to 128 bits. The server
 *   key never leaves this process, so a verifying tag proves that this server minted the
 *   token for that family. That is how a store tells a genuinely issued, since rotated,
 *   token (reuse: revoke the family) from one forged by someone who only learnt the family
 *   id (revoke nothing) while storing just the current token's hash and the previous
 *   one's, never a history.
 *
 * A family's first token has a random secret. Every later one is its predecessor's
 * successor: its secret is HMAC-SHA256(successor key, predecessor token), the successor key
 * derived from the server key under its own label. So any number of presentations of the
 * same token get the same successor (concurrent tabs converge, a lost response can be
 * retried) without the store keeping anything but hashes: a store tells a retry from reuse
 * by comparing the hash of the successor it is handed with its current one.
 *
 * Stores keep only `hashRefreshToken(token)` (SHA-256): without the server key and a
 * secret nobody has, nothing in a backend dump can be turned back into a token.
 *
 * Minting and checking tokens is this module's job, keeping them is the store's (fosite's
 * strategy and storage): `createRefreshTokens` verifies the tag and hands a `FamilyStore`
 * only the family id and hashes, so no store ever holds the server key.
 *
 * Changing the server key invalidates every outstanding refresh token (their tags no
 * longer verify: "invalid", nothing revoked); users sign in again.
 */
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import type { Random } from '../random.js';
import type { CreatedFamily, Family, FamilyGrant, FamilyStore, NewFamily, RotateResult, RotationExpectations, UseContext } from '../stores/types.js';

const SECRET_BYTES = 32;
const TAG_BYTES = 16;
const FAMILY_ID_BYTES = 16;
/** 24 bits: enough to spread subjects evenly over Redis Cluster's 16,384 slots. */
const SUBJECT_TAG_LENGTH = 4;
const FAMILY_ID = /^[A-Za-z0-9_-]{16,64}$/;
const SECRET = /^[A-Za-z0-9_-]{43}$/;
const TAG = /^[A-Za-z0-9_-]{22}$/;
/** familyId (≤ 64) + secret (43) + tag (22) + two dots. */
const MAX_TOKEN_LENGTH = 64 + 43 + 22 + 2;
/** Domain separation: the configured secret may be used for other MACs too. */
const KEY_LABEL = 'token-authority refresh-token tag v1';
const SUCCESSOR_KEY_LABEL = 'token-authority refresh-token successor v1';

export interface ParsedRefreshToken {
  readonly familyId: string;
  readonly secret: string;
  readonly tag: string;
}

export interface RefreshTokenCodec {
  /** A new family id for `subject`: its `subjectTag`, then 128 random bits, base64url. */
  newFamilyId(subject: string): string;
  /** A fresh token for `familyId`: a random secret (a family's first token). */
  mint(familyId: string): string;
  /**
   * The one token that replaces `token` (as `verify` returned it) when it rotates: same
   * family, secret = HMAC-SHA256(successor key, token), so the same every time it is asked.
   */
  successor(token: ParsedRefreshToken): string;
  /**
   * The parts of `token` when it is well formed and its tag verifies under the server key;
   * undefined otherwise (anything at all may be passed; it never throws).
   */
  verify(token: unknown): ParsedRefreshToken | undefined;
}

/**
 * What every family id of `subject` starts with: the first 4 base64url characters of its
 * SHA-256. Public, like the `sub` claim beside the `sid` that carries it.
 */
export function subjectTag(subject: string): string {
  return hash('sha256', subject, 'base64url').slice(0, SUBJECT_TAG_LENGTH);
}

/** The `subjectTag` a family id starts with. */
export function familyIdTag(familyId: string): string {
  return familyId.slice(0, SUBJECT_TAG_LENGTH);
}

/** True for strings shaped like a family id; anything else is rejected before a lookup. */
export function isFamilyId(value: unknown): value is string {
  return typeof value === 'string' && FAMILY_ID.test(value);
}

/**
 * Splits a token into its parts without checking the tag; undefined for anything
 * malformed, including non-canonical base64url (two spellings of one token would hash
 * differently, and the second spelling of the current token would look like reuse).
 */
export function parseRefreshToken(token: unknown): ParsedRefreshToken | undefined {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [familyId, secret, tag] = parts as [string, string, string];
  if (!FAMILY_ID.test(familyId) || !SECRET.test(secret) || !TAG.test(tag)) return undefined;
  if (!isCanonical(familyId) || !isCanonical(secret) || !isCanonical(tag)) return undefined;
  return { familyId, secret, tag };
}

/** What stores keep instead of the token: SHA-256, base64url. */
export function hashRefreshToken(token: string): string {
  return hash('sha256', token, 'base64url');
}

/** True for strings shaped like `hashRefreshToken`'s output (43 base64url characters). */
export function isTokenHash(value: unknown): value is string {
  return typeof value === 'string' && SECRET.test(value);
}

export function createRefreshTokenCodec({ secret, random }: { secret: string; random: Random }): RefreshTokenCodec {
  if (typeof secret !== 'string' || secret.length < 32) {
    throw new TypeError('refresh-token secret must be at least 32 characters');
  }
  const key = createHmac('sha256', secret).update(KEY_LABEL).digest();
  const successorKey = createHmac('sha256', secret).update(SUCCESSOR_KEY_LABEL).digest();
  const tagOf = (familyId: string, tokenSecret: string): Buffer =>
    createHmac('sha256', key).update(`${familyId}.${tokenSecret}`).digest().subarray(0, TAG_BYTES);
  const token = (familyId: string, tokenSecret: string): string => `${familyId}.${tokenSecret}.${tagOf(familyId, tokenSecret).toString('base64url')}`;

  return {
    newFamilyId: (subject) => `${subjectTag(subject)}${random.token(FAMILY_ID_BYTES)}`,
    mint(familyId) {
      if (!FAMILY_ID.test(familyId)) throw new TypeError('not a family id');
      const tokenSecret = random.token(SECRET_BYTES);
      if (!SECRET.test(tokenSecret)) throw new TypeError('Random.token(32) must return 43 base64url characters');
      return token(familyId, tokenSecret);
    },
    successor({ familyId, secret: tokenSecret, tag }) {
      const next = createHmac('sha256', successorKey).update(`${familyId}.${tokenSecret}.${tag}`).digest('base64url');
      return token(familyId, next);
    },
    verify(presented) {
      const parsed = parseRefreshToken(presented);
      if (!parsed) return undefined;
      const expected = tagOf(parsed.familyId, parsed.secret);
      return timingSafeEqual(expected, Buffer.from(parsed.tag, 'base64url')) ? parsed : undefined;
    },
  };
}

function isCanonical(base64url: string): boolean {
  return Buffer.from(base64url, 'base64url').toString('base64url') === base64url;
}

/** A rotation as the token layer answers it: with the new token when it rotated. */
export type RefreshTokenRotation =
  { readonly outcome: 'rotated'; readonly family: Family; readonly refreshToken: string } | Exclude<RotateResult, { readonly outcome: 'rotated' }>;

export interface RefreshTokensDeps {
  /** Server-side MAC key (`Config.refreshTokenSecret`), at least 32 characters; never stored. */
  readonly secret: string;
  readonly random: Random;
  readonly families: Pick<FamilyStore, 'create' | 'rotate' | 'current'>;
}

const INVALID: RefreshTokenRotation = Object.freeze({ outcome: 'invalid' });

/**
 * Refresh tokens over a family store: mints them, checks their tag, and asks the store
 * with the family id and hashes only. A token whose tag does not verify (forged, or for
 * another server key) never reaches the store, which is what lets the store take any
 * hash that is neither current nor a retry as reuse (FamilyStore.rotate).
 */
export function createRefreshTokens({ secret, random, families }: RefreshTokensDeps) {
  const codec = createRefreshTokenCodec({ secret, random });

  return {
    /** A new family id for `subject`, for `create`: known before the family exists (its access token's `sid`). */
    newFamilyId: (subject: string): string => codec.newFamilyId(subject),

    /**
     * A new family for `grant` (with the id from `newFamilyId`, or a new one), and its first
     * token; SignInEndedError as `FamilyStore.create` (`signedInAt`).
     */
    async create(
      grant: FamilyGrant & Pick<NewFamily, 'signedInAt'> & { id?: string },
      context: UseContext,
    ): Promise<{ family: CreatedFamily; refreshToken: string }> {
      const id = grant.id ?? codec.newFamilyId(grant.subject);
      const refreshToken = codec.mint(id);
      const { subject, clientId, scope, audience, signIn, signedInAt } = grant;
      const family = await families.create({ subject, clientId, scope, audience, signIn, signedInAt, id, tokenHash: hashRefreshToken(refreshToken) }, context);
      return { family, refreshToken };
    },

    /** FamilyStore.rotate for a presented token; `invalid` without asking the store when its tag does not verify. */
    async rotate(refreshToken: string, context: UseContext, expected: RotationExpectations = {}): Promise<RefreshTokenRotation> {
      const parsed = codec.verify(refreshToken);
      if (!parsed) return INVALID;
      // Deterministic: every presentation of this token asks for the same successor, which
      // is how the store recognises a retry inside the grace window (FamilyStore.rotate).
      const next = codec.successor(parsed);
      const hashes = { presented: hashRefreshToken(refreshToken), next: hashRefreshToken(next) };
      const result = await families.rotate(parsed.familyId, hashes, context, expected);
      return result.outcome === 'rotated' ? { outcome: 'rotated', family: result.family, refreshToken: next } : result;
    },

    /** The live family a token belongs to, if the token is its current one; never rotates. */
    async inspect(refreshToken: string): Promise<Family | null> {
      const parsed = codec.verify(refreshToken);
      return parsed ? families.current(parsed.familyId, hashRefreshToken(refreshToken)) : null;
    },

    /**
     * The family id of a token this server minted (its tag verifies), current or not,
     * without asking the store; undefined for malformed or forged tokens. For RFC 7009
     * revocation: any genuinely issued token of a family may end it, a forged one may not.
     */
    verifiedFamilyId(refreshToken: string): string | undefined {
      return codec.verify(refreshToken)?.familyId;
    },
  };
}

export type RefreshTokens = ReturnType<typeof createRefreshTokens>;
