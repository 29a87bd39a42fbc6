/**
 * Store interfaces. Services depend on these (or narrow `Pick<>`s of them), never on a
 * driver. Each has an in-memory adapter (`memory/`, the embedded dev default) and a
 * real one (`redis/` or `mongo/`); one contract suite in `test/stores/` runs against all.
 *
 * Error contract shared by every store: a method that cannot reach its backend rejects
 * with `StoreUnavailableError` (mapped to 503 `temporarily_unavailable`); every other
 * rejection is a bug.
 */

/** The backend could not be reached or timed out. Never retried silently. */
export class StoreUnavailableError extends Error {
  constructor(readonly store: string, options?: { cause?: unknown }) {
    super(`${store} store unavailable`, options);
    this.name = 'StoreUnavailableError';
  }
}

/** A unique constraint was violated (e.g. an email or client_id that already exists). */
export class DuplicateKeyError extends Error {
  constructor(readonly field: string) {
    super(`duplicate ${field}`);
    this.name = 'DuplicateKeyError';
  }
}

/** Something a readiness probe can ask. */
export interface Pingable {
  /** Resolves when the backend answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
}

// ---------------------------------------------------------------- users

export interface UserRecord {
  readonly id: string;
  /** Normalised: trimmed, NFKC, lower-cased. */
  readonly email: string;
  readonly name: string | undefined;
  readonly roles: readonly string[];
  readonly disabled: boolean;
  readonly passwordChangedAt: Date;
  /** The session (`sid`, else the access token's `jti`) that made the last password change, if one did. */
  readonly passwordChangedBy: string | undefined;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewUser {
  /** Must already be normalised by the caller. */
  readonly email: string;
  readonly name?: string | undefined;
  readonly passwordHash: string;
  readonly roles?: readonly string[];
}

/**
 * Users. The password hash never appears in a UserRecord: only `getPasswordHash` returns
 * it, and only the password service calls that.
 */
export interface UserStore extends Pingable {
  /** Rejects with DuplicateKeyError('email') when the email exists, also under a race. */
  create(user: NewUser): Promise<UserRecord>;
  findById(id: string): Promise<UserRecord | null>;
  /** `email` must be normalised. */
  findByEmail(email: string): Promise<UserRecord | null>;
  /** The stored argon2id hash, or null when the user does not exist. */
  getPasswordHash(id: string): Promise<string | null>;
  /**
   * The user and their hash in one read, for login: one round trip whether or not the
   * account exists, so timing does not tell. `email` must be normalised.
   */
  findCredentials(email: string): Promise<{ user: UserRecord; passwordHash: string } | null>;
  /**
   * Replaces the hash only if it is still `expected` (the hash the caller verified), in one
   * atomic write; a change (`change` given) also sets `passwordChangedAt` and
   * `passwordChangedBy`, a re-hash keeps both. False when the hash had changed meanwhile (or
   * the user is gone): a login re-hashing the old password must not undo a password change
   * that landed while it hashed.
   */
  setPasswordHash(id: string, passwordHash: string, options: { expected: string; change?: { at: Date; by: string } }): Promise<boolean>;
}

// ---------------------------------------------------------------- OAuth clients

export type GrantType = 'password' | 'refresh_token' | 'client_credentials';
export type ClientPermission = 'introspect' | 'revoke';

export interface ClientRecord {
  readonly clientId: string;
  readonly name: string;
  /** Public clients have no secret and authenticate with `client_id` alone. */
  readonly type: 'public' | 'confidential';
  readonly firstParty: boolean;
  readonly grantTypes: readonly GrantType[];
  readonly scopes: readonly string[];
  /** Allowed `aud` values; empty = only the server's default AUDIENCE. */
  readonly audiences: readonly string[];
  readonly permissions: readonly ClientPermission[];
  /** Login puts the refresh token in an HttpOnly cookie for this client. */
  readonly cookieMode: boolean;
  /** SHA-256 (hex) of the secret for confidential clients; compared in constant time. */
  readonly secretHash: string | undefined;
  readonly createdAt: Date;
}

export type NewClient = Omit<ClientRecord, 'createdAt'>;

export interface ClientStore extends Pingable {
  /** Rejects with DuplicateKeyError('client_id') when the id exists. */
  create(client: NewClient): Promise<ClientRecord>;
  findById(clientId: string): Promise<ClientRecord | null>;
}

// ---------------------------------------------------------------- refresh-token families

/** What a family was issued for; fixed at creation. */
export interface FamilyGrant {
  /** `sub` of the tokens: a user id. */
  readonly subject: string;
  readonly clientId: string;
  readonly scope: string;
  readonly audience: string;
}

/** Where the family was last used from, for the sessions list. */
export interface UseContext {
  readonly userAgent?: string | undefined;
  readonly ip?: string | undefined;
}

export interface Family extends FamilyGrant {
  /** Also the `sid` claim of the access tokens issued in this family. */
  readonly id: string;
  readonly createdAt: number;
  readonly lastUsedAt: number;
  /** Absolute expiry (ms since epoch); never extended. */
  readonly expiresAt: number;
  readonly userAgent: string | undefined;
  readonly ip: string | undefined;
}

/** A family to create, as the token layer (`tokens/refresh-token.ts`) hands it over. */
export interface NewFamily extends FamilyGrant {
  /** A family id (`isFamilyId`), chosen by the token layer. */
  readonly id: string;
  /** `hashRefreshToken` of the family's first token. */
  readonly tokenHash: string;
}

/** The hashes of one rotation: of the presented token, and of the token that replaces it. */
export interface RotationHashes {
  readonly presented: string;
  readonly next: string;
}

export type RotateResult =
  /** The presented token was current (or a retry within the grace window): `next` is now current. */
  | { readonly outcome: 'rotated'; readonly family: Family }
  /** A genuinely issued, already rotated token outside the grace window: the family is now revoked. */
  | { readonly outcome: 'reused'; readonly familyId: string }
  /** Unknown, expired or revoked family, or another client's: nothing changed. */
  | { readonly outcome: 'invalid' };

/**
 * Refresh-token families. The store never sees a token nor the key that signs them: the
 * token layer (`tokens/refresh-token.ts`) mints and checks tokens and passes family ids
 * and token hashes (`hashRefreshToken`), so a dump of the backend holds nothing that can
 * be presented as a token, and nothing that can mint one.
 *
 * `rotate` is one atomic step. The caller vouches that `presented` is the hash of a token
 * it minted for `familyId` (its tag verified): such a token that is neither current nor a
 * retry was issued and rotated away, which is reuse. With no grace window, of any number
 * of concurrent presentations of one token exactly one gets `rotated`; the next is reuse
 * (the family is revoked) and any later ones find no family (`invalid`). Within the grace
 * window (`REFRESH_REUSE_GRACE` after a rotation, timed by the store's own clock: Redis's
 * for the Redis adapter) presenting the just-rotated token again is taken as a client
 * retry: it rotates again and the token issued by the earlier rotation stops being
 * current, so a family never has more than one live token; if that earlier token is
 * presented later, it is reuse. A presentation the store stamps before the rotation (its
 * clock went back) is never a retry.
 *
 * A family expires after `refreshTokenTtl` without use, and at `expiresAt` at the latest.
 * Revoking deletes the family and leaves a marker for `revokedMarkerTtl`. Every method
 * rejects with StoreUnavailableError when the backend is unreachable; a rotation that
 * rejected either happened entirely or not at all. A malformed id or hash given to
 * `create` or `rotate` is a bug: TypeError.
 */
export interface FamilyStore extends Pingable {
  create(family: NewFamily, context: UseContext): Promise<Family>;
  /**
   * `clientId`, when given, binds the token to its client inside the same atomic step: a
   * token presented by another client is `invalid` and changes nothing (RFC 6749 §10.4).
   */
  rotate(familyId: string, hashes: RotationHashes, context: UseContext, expected?: { readonly clientId?: string }): Promise<RotateResult>;
  /** The live family, if `tokenHash` is its current token's; never rotates. */
  current(familyId: string, tokenHash: string): Promise<Family | null>;
  /** The live family, or null (also for ids that are not family-id shaped). */
  get(familyId: string): Promise<Family | null>;
  /** The subject's live families, most recently used first. */
  listBySubject(subject: string): Promise<Family[]>;
  /** Revokes one family; resolves false when it did not exist (or had expired). */
  revoke(familyId: string): Promise<boolean>;
  /**
   * Revokes every family of `subject` except `exceptFamilyId`; resolves the count. Each
   * family is revoked atomically, the set is not: a rejection may leave some revoked, and
   * calling again finishes the job.
   */
  revokeAll(subject: string, exceptFamilyId?: string): Promise<number>;
  /** True while a revoked family's marker lives (until its last access token expired). */
  isRevoked(familyId: string): Promise<boolean>;
}

// ---------------------------------------------------------------- access-token denylist

/** Revoked access tokens by `jti`, each kept only until the token would have expired anyway. */
export interface AccessTokenDenylist extends Pingable {
  /**
   * Denies `jti` until `expiresAt` (ms since epoch); the entry then disappears by itself.
   * An `expiresAt` already past is a no-op. Throws TypeError for a `jti` that is not a
   * non-empty string of at most 256 characters.
   */
  deny(jti: string, expiresAt: number): Promise<void>;
  /** False for anything that is not a jti we could have denied. */
  isDenied(jti: string): Promise<boolean>;
}

// ---------------------------------------------------------------- rate limits

export interface RateLimitOptions {
  /** Namespace of the counters, e.g. `login:account-ip`. */
  readonly keyPrefix: string;
  readonly points: number;
  readonly durationSec: number;
  /** Once the budget is spent, keep the key blocked this long (default: rest of the window). */
  readonly blockDurationSec?: number;
}

export interface RateLimitState {
  readonly allowed: boolean;
  readonly remaining: number;
  /** Milliseconds until the next point is available (0 when allowed). */
  readonly retryAfterMs: number;
}

export interface RateLimiter {
  /** Spends `points` (default 1) for `key`. */
  consume(key: string, points?: number): Promise<RateLimitState>;
  /** Forgets `key` (a successful login resets its counter). */
  reset(key: string): Promise<void>;
  /** Gives back `points` (default 1) spent by `consume`: for "spend first, refund on success". */
  refund(key: string, points?: number): Promise<void>;
}

/** Shared counters: in-process for dev, Redis so that limits hold across instances. */
export interface RateLimitBackend {
  limiter(options: RateLimitOptions): RateLimiter;
}
