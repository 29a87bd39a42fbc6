/**
 * Store interfaces. Services depend on these (or narrow `Pick<>`s of them), never on a
 * driver. Each has an in-memory adapter (`memory/`, the embedded dev default) and a
 * real one (`redis/` or `mongo/`); one contract suite in `test/stores/` runs against all.
 *
 * Error contract shared by every store: a method that cannot reach its backend rejects
 * with `StoreUnavailableError` (mapped to 503 `temporarily_unavailable`); every other
 * rejection is a bug.
 */
import type { GrantType } from '../oauth/grants/index.js';

/** The backend could not be reached or timed out (defined with the other errors, which the HTTP layer maps). */
export { StoreUnavailableError } from '../errors.js';

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

/** `admin`: may obtain the `admin` scope by client_credentials (the admin API, `/admin/*`). */
export type ClientPermission = 'introspect' | 'revoke' | 'admin';

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
  /**
   * Redirect URIs of the authorization code flow (RFC 6749 §3.1.2), compared as exact
   * strings, except that a loopback one matches any port (RFC 8252 §7.3).
   */
  readonly redirectUris: readonly string[];
  /** Authorization requests must be pushed first (RFC 9126 §6). */
  readonly requirePar: boolean;
  /** SHA-256 (hex) of the secret for confidential clients; compared in constant time. */
  readonly secretHash: string | undefined;
  readonly createdAt: Date;
}

/** What `create` takes; the code-flow fields default to none and false. */
export type NewClient = Omit<ClientRecord, 'createdAt' | 'redirectUris' | 'requirePar'> & {
  readonly redirectUris?: readonly string[];
  readonly requirePar?: boolean;
};

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
  /** The presented token was current, or a retry within the grace window: `next` is now current. */
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
 * for the Redis adapter) presenting the just-rotated token again with the current token's
 * hash as `next` is a retry: `rotated`, and nothing changes (the token layer derives a
 * token's successor from it, so every presentation of one token names the same `next`).
 * So a family only ever has one live token, and the window is never extended. Anything
 * else is reuse: an older token, the previous one after the window or with another
 * `next`. A presentation the store stamps before the rotation (its clock went back) is
 * never a retry.
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

// ---------------------------------------------------------------- consents

/** What a user allowed a third-party client: remembered per user and client (OAuth consent). */
export interface ConsentRecord {
  readonly userId: string;
  readonly clientId: string;
  /** Every scope token the user has allowed this client, in the order first allowed. */
  readonly scopes: readonly string[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/**
 * Consents of users to clients. A consent covers a request when every requested scope
 * token is among its `scopes`; a wider request asks again and `grant` adds the new tokens.
 */
export interface ConsentStore extends Pingable {
  /** Adds `scopes` to the consent of `userId` for `clientId` (creating it), in one atomic write. */
  grant(userId: string, clientId: string, scopes: readonly string[]): Promise<ConsentRecord>;
  find(userId: string, clientId: string): Promise<ConsentRecord | null>;
  /** The user's consents, most recently updated first. */
  listByUser(userId: string): Promise<ConsentRecord[]>;
  /** Forgets one consent; resolves false when there was none. */
  revoke(userId: string, clientId: string): Promise<boolean>;
}

// ---------------------------------------------------------------- authorization codes

/** What an authorization code was issued for (RFC 6749 §4.1.2, RFC 7636 §4.4); fixed at save. */
export interface AuthorizationCodeRecord {
  readonly clientId: string;
  readonly redirectUri: string;
  /** PKCE `code_challenge` (S256 only). */
  readonly codeChallenge: string;
  readonly userId: string;
  readonly scope: string;
  readonly audience: string;
  /** When the user authenticated (ms since epoch): the sign-in's time, not the code's. */
  readonly authTime: number;
}

/** What the token endpoint issued from a code, so that a second presentation can undo it. */
export interface IssuedFromCode {
  /** The refresh family, when one was created. */
  readonly familyId?: string;
  readonly accessTokenJti: string;
  /** ms since epoch: the denylist entry for the jti can end then. */
  readonly accessTokenExpiresAt: number;
}

export type ConsumeCodeResult =
  /** The first presentation of a live code: redeem it. */
  | { readonly outcome: 'consumed'; readonly record: AuthorizationCodeRecord }
  /**
   * The code was consumed before: answer invalid_grant, revoke `issued.familyId` and deny
   * `issued.accessTokenJti` (RFC 6749 §4.1.2). `issued` is absent when the first redeemer
   * has not recorded yet; that redeemer then hears `'reused'` from `recordIssued`.
   */
  | { readonly outcome: 'reused'; readonly record: AuthorizationCodeRecord; readonly issued?: IssuedFromCode }
  /** Unknown, expired, or presented by another client than the one it was issued to: nothing changed. */
  | { readonly outcome: 'invalid' };

/**
 * Authorization codes, by the hash of the code (the caller mints and hashes; the store
 * never sees a code). A hash is 22 to 128 characters of base64url (hex fits); `save` throws
 * TypeError for anything else, the other methods treat it as unknown.
 *
 * `consume` is one atomic step (a Lua script; one synchronous step in memory): of any
 * number of concurrent presentations of a live code exactly one gets `consumed`, every
 * other gets `reused`. A consumed code is remembered until its original expiry plus
 * `consumedRetentionMs` (store option), so reuse is detected that long; after that it is
 * `invalid`. Every method rejects with StoreUnavailableError when the backend is unreachable.
 */
export interface AuthorizationCodeStore extends Pingable {
  /** Stores a code live for `ttlMs` (60 s in the issue). Rejects with DuplicateKeyError('code') if the hash exists. */
  save(codeHash: string, record: AuthorizationCodeRecord, ttlMs: number): Promise<void>;
  /**
   * `expected.clientId`, when given, binds the code to its client inside the same step: a
   * code presented by another client is `invalid` and is neither consumed nor marked reused
   * (RFC 6749 §4.1.3), so a client holding a stolen code cannot burn it.
   */
  consume(codeHash: string, expected?: { readonly clientId?: string }): Promise<ConsumeCodeResult>;
  /**
   * Records what was issued from a consumed code, once. `'recorded'`: done. `'reused'`: a
   * second presentation arrived between `consume` and now; it is recorded all the same,
   * and the caller must revoke what it just issued and answer invalid_grant. `'unknown'`:
   * the code is not consumed, already has a record, or is gone; the caller must also revoke.
   */
  recordIssued(codeHash: string, issued: IssuedFromCode): Promise<'recorded' | 'reused' | 'unknown'>;
}

// ---------------------------------------------------------------- pushed authorization requests

/**
 * Pushed authorization requests (RFC 9126), by the unguessable id in their `request_uri`.
 * `take` is one atomic step: a request is handed out once, to the client that pushed it,
 * while it lives. A `take` by another client, or of an expired or unknown id, resolves null
 * and changes nothing (RFC 9126 §4: the request_uri is bound to its client). An id is 22 to
 * 128 characters of base64url: `save` throws TypeError otherwise, `take` resolves null.
 * Every method rejects with StoreUnavailableError when the backend is unreachable.
 */
export interface PushedRequestStore extends Pingable {
  /** Stores the parameters for `ttlMs` (60 s). Rejects with DuplicateKeyError('request_uri') if the id exists. */
  save(requestId: string, clientId: string, parameters: Readonly<Record<string, string>>, ttlMs: number): Promise<void>;
  take(requestId: string, clientId: string): Promise<Readonly<Record<string, string>> | null>;
}

// ---------------------------------------------------------------- browser sign-in sessions (SSO)

export interface NewBrowserSession {
  readonly userId: string;
  /** When the user authenticated (ms since epoch); `max_age` and `prompt=login` compare with it. */
  readonly authTime: number;
  /** Authentication methods (RFC 8176), e.g. `['pwd']`. */
  readonly amr: readonly string[];
}

export interface BrowserSession extends NewBrowserSession {
  /** Public handle, for the sessions list and ending one; not enough to use the session. */
  readonly id: string;
  readonly createdAt: number;
  readonly lastSeenAt: number;
  /** Absolute expiry (ms since epoch); never extended. */
  readonly expiresAt: number;
}

/**
 * Sign-in sessions at the authority, one per browser. The cookie value is
 * `<id>.<secret>` (128-bit id, 256-bit secret, base64url), minted by `create` and returned
 * once; the store keeps only a SHA-256 of it, so a dump holds no usable cookie. A session
 * ends `idleMs` after its last `create`/`touch`, at `expiresAt` at the latest, or when
 * deleted. `get` and `touch` resolve null for a malformed, unknown, expired or wrong-secret
 * cookie; `delete` and `deleteAllOfUser` are what logout and a password change call.
 * Every method rejects with StoreUnavailableError when the backend is unreachable.
 */
export interface BrowserSessionStore extends Pingable {
  create(session: NewBrowserSession): Promise<{ session: BrowserSession; cookieValue: string }>;
  /** The live session the cookie opens; does not extend it. */
  get(cookieValue: string): Promise<BrowserSession | null>;
  /** Like `get`, and records a use: `lastSeenAt` = now, idle expiry moved (never past `expiresAt`). */
  touch(cookieValue: string): Promise<BrowserSession | null>;
  /** Ends one session by its public id; false when it did not exist (or had expired). */
  delete(sessionId: string): Promise<boolean>;
  /** The user's live sessions, most recently seen first. */
  listByUser(userId: string): Promise<BrowserSession[]>;
  /** Ends every session of the user except `exceptSessionId`; resolves the count. Each delete is atomic, the set is not: call again to finish. */
  deleteAllOfUser(userId: string, exceptSessionId?: string): Promise<number>;
}
