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
import type { IdTokenSigningAlg } from '../tokens/id-token.js';

/** The backend could not be reached or timed out (defined with the other errors, which the HTTP layer maps). */
export { StoreUnavailableError } from '../errors.js';

/** A unique constraint was violated (e.g. an email or client_id that already exists). */
export class DuplicateKeyError extends Error {
  constructor(readonly field: string) {
    super(`duplicate ${field}`);
    this.name = 'DuplicateKeyError';
  }
}

/**
 * `FamilyStore.create` refused a family: its sign-in (`NewFamily.signedInAt`) is older than
 * the last time every session of its subject was ended (`revokeAll`). A password change or
 * a logout-all that ran while the sign-in was in flight wins.
 */
export class SignInEndedError extends Error {
  constructor() {
    super('every session of the subject was ended after this sign-in');
    this.name = 'SignInEndedError';
  }
}

/**
 * `FamilyStore.create` refused a family: its id was revoked before it was created
 * (`revoke(id, { ahead: true })`: the authorization code it comes from was presented again
 * while it was being redeemed, RFC 6749 §4.1.2).
 */
export class FamilyRevokedError extends Error {
  constructor() {
    super('the family was revoked before it was created');
    this.name = 'FamilyRevokedError';
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
  /** The owner proved `email` is theirs (a link mailed to it was opened); false for an address never confirmed. */
  readonly emailVerified: boolean;
  readonly passwordChangedAt: Date;
  /** The session (`sid`, else the access token's `jti`) that made the last password change, if one did. */
  readonly passwordChangedBy: string | undefined;
  /**
   * How many times the user signed out everywhere (logout-all). A login in flight no
   * longer compares it: `FamilyStore.revokeAll` stamps the end of the sessions, and the
   * family's creation checks its sign-in against that stamp.
   */
  readonly signOuts: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NewUser {
  /** Must already be normalised by the caller. */
  readonly email: string;
  readonly name?: string | undefined;
  readonly passwordHash: string;
  readonly roles?: readonly string[];
  /** Default false. */
  readonly emailVerified?: boolean;
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
  /** Adds one to `signOuts` in one atomic write; an unknown id changes nothing. */
  recordSignOut(id: string): Promise<void>;
  /** Marks the address verified, only if the user's email is still `email` (atomic); false otherwise or when the user is gone. */
  markEmailVerified(id: string, email: string): Promise<boolean>;
  /**
   * Replaces the email `from` by `to` (normalised; verified, since only a confirmed change
   * calls this), only if the email is still `from` (atomic): false otherwise. Rejects with
   * DuplicateKeyError('email') when `to` belongs to another user, also under a race.
   */
  changeEmail(id: string, from: string, to: string): Promise<boolean>;
  /** Changes the given fields; the updated user, or null when there is none. */
  update(id: string, changes: UserChanges): Promise<UserRecord | null>;
  /** Removes the user; false when there was none. */
  delete(id: string): Promise<boolean>;
  /**
   * Users whose email starts with `prefix` (normalised; '' = all), in email order, those
   * after the email `page.after` (exclusive) only, at most `page.limit` (the admin API).
   */
  listByEmailPrefix(prefix: string, page: PageRequest): Promise<UserRecord[]>;
}

/** One page of a listing in key order: at most `limit` records whose key sorts after `after` (exclusive). */
export interface PageRequest {
  readonly limit: number;
  readonly after?: string | undefined;
}

/** The fields of a user an administrator may change. */
export interface UserChanges {
  readonly roles?: readonly string[];
  readonly disabled?: boolean;
  readonly name?: string;
}

/**
 * Tells every instance that a user record changed, so that in-process caches of users
 * drop it. `publish` reaches this instance too. Delivery is at most once: whenever the
 * feed may have missed a change (its connection dropped, or it reconnected) it calls
 * `reset`, and `live()` is false until it receives again.
 */
export interface UserChangeFeed {
  publish(userId: string): Promise<void>;
  subscribe(listener: { changed(userId: string): void; reset(): void }): void;
  live(): boolean;
  close(): Promise<void>;
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
  /** OIDC RP-Initiated Logout §3: where the user may be sent after logging out, compared as exact strings. */
  readonly postLogoutRedirectUris: readonly string[];
  /** OIDC Back-Channel Logout §2.2: where logout tokens are POSTed. */
  readonly backchannelLogoutUri: string | undefined;
  /** OIDC Registration §2 `id_token_signed_response_alg`: how its ID tokens (and logout tokens) are signed; RS256 by default. */
  readonly idTokenSignedResponseAlg: IdTokenSigningAlg;
  /** SHA-256 (hex) of the secret for confidential clients; compared in constant time. */
  readonly secretHash: string | undefined;
  readonly createdAt: Date;
}

/** What `create` takes; the code-flow and logout fields default to none and false, the ID token alg to RS256. */
export type NewClient = Omit<
  ClientRecord,
  'createdAt' | 'redirectUris' | 'requirePar' | 'postLogoutRedirectUris' | 'backchannelLogoutUri' | 'idTokenSignedResponseAlg'
> & {
  readonly redirectUris?: readonly string[];
  readonly requirePar?: boolean;
  readonly postLogoutRedirectUris?: readonly string[];
  readonly backchannelLogoutUri?: string | undefined;
  readonly idTokenSignedResponseAlg?: IdTokenSigningAlg | undefined;
};

export interface ClientStore extends Pingable {
  /** Rejects with DuplicateKeyError('client_id') when the id exists. */
  create(client: NewClient): Promise<ClientRecord>;
  findById(clientId: string): Promise<ClientRecord | null>;
  /** Clients in client_id order, those after `page.after` (exclusive) only, at most `page.limit` (the admin API). */
  list(page: PageRequest): Promise<ClientRecord[]>;
  /** Changes the given fields (a secret rotation gives the new hash); the updated client, or null when there is none. */
  update(clientId: string, changes: ClientChanges): Promise<ClientRecord | null>;
  /** Removes the client; false when there was none. */
  delete(clientId: string): Promise<boolean>;
}

/** The fields of a client an administrator may change: its id, type, permissions and creation time stay. */
export type ClientChanges = Partial<
  Pick<ClientRecord, 'name' | 'firstParty' | 'grantTypes' | 'scopes' | 'audiences' | 'redirectUris' | 'postLogoutRedirectUris' | 'requirePar' | 'secretHash'>
>;

// ---------------------------------------------------------------- refresh-token families

/** What a family was issued for; fixed at creation. */
export interface FamilyGrant {
  /** `sub` of the tokens: a user id. */
  readonly subject: string;
  readonly clientId: string;
  readonly scope: string;
  readonly audience: string;
  /**
   * The browser sign-in the family came from (OpenID Connect): a refresh's new ID token
   * keeps its `sid`, `auth_time` and `amr`. Absent for families of other grants.
   */
  readonly signIn?: FamilySignIn | undefined;
}

/** The sign-in behind a family: the browser session's id, when the user authenticated (ms), how. */
export interface FamilySignIn {
  readonly sid: string;
  readonly authTime: number;
  readonly amr: readonly string[];
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

/** What `FamilyStore.create` answers: the new family, and what the per-subject cap ended to make room for it. */
export interface CreatedFamily extends Family {
  /**
   * Ids of the subject's live families that this `create` revoked because the subject was
   * at `maxFamiliesPerSubject`, oldest first; empty under the cap. Expired ones it dropped
   * are not among them. The caller reports them (`family.revoked`, reason `session_cap`).
   */
  readonly endedByCap: readonly string[];
}

/** A family to create, as the token layer (`tokens/refresh-token.ts`) hands it over. */
export interface NewFamily extends FamilyGrant {
  /** A family id (`isFamilyId`), chosen by the token layer. */
  readonly id: string;
  /** `hashRefreshToken` of the family's first token. */
  readonly tokenHash: string;
  /**
   * When the sign-in the family comes from checked its user (ms, the application's clock):
   * a password login's read of the credentials, a code's `auth_time`. Checked in the same
   * atomic step as the creation: if `revokeAll` ended the subject's sessions after this
   * instant, `create` rejects with SignInEndedError and creates nothing. Absent: no check.
   */
  readonly signedInAt?: number | undefined;
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
  | { readonly outcome: 'reused'; readonly familyId: string; /** As it was before it ended (its last rotation's user agent and IP). */ readonly family: Family }
  /** Unknown, expired or revoked family, or another client's: nothing changed. */
  | { readonly outcome: 'invalid' }
  /**
   * The request asked for more than `expected` allows (`value`: the scope token, or for
   * `target` the family's audience): nothing changed.
   */
  | { readonly outcome: 'refused'; readonly reason: RotationRefusal; readonly value: string }
  /** The family's audience is no longer among `expected.audiences`: the family is now revoked. */
  | { readonly outcome: 'withdrawn'; readonly familyId: string; /** As it was before it ended. */ readonly family: Family };

/**
 * `scope_exceeded`: a requested scope token is not in the family's scope; `scope_lost`: not
 * in `clientScopes`; `target`: the requested audience is not the family's.
 */
export type RotationRefusal = 'scope_exceeded' | 'scope_lost' | 'target';

/**
 * What a rotation holds the family to inside its one atomic step, in this order: the
 * client binding (`invalid`), the requested scope within the family's and within the
 * client's current scopes, the requested audience the family's own (`refused`, nothing
 * changes), the family's audience still one the client may target (`withdrawn`, the
 * family ends). Each check is skipped when its field is absent.
 */
export interface RotationExpectations {
  /** Binds the token to its client (RFC 6749 §10.4). */
  readonly clientId?: string;
  /** The scope tokens the request asks for (RFC 6749 §6). */
  readonly scope?: readonly string[];
  /** The client's scopes now. */
  readonly clientScopes?: readonly string[];
  /** RFC 8707 `resource` / `audience` as requested. */
  readonly audience?: string;
  /** Every audience the client may target now. */
  readonly audiences?: readonly string[];
}

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
  create(family: NewFamily, context: UseContext): Promise<CreatedFamily>;
  /**
   * `expected` is checked inside the same atomic step, before the token is looked at (see
   * RotationExpectations): a token presented by another client is `invalid` and changes
   * nothing (RFC 6749 §10.4). The reply carries the family, so nothing need be read first.
   */
  rotate(familyId: string, hashes: RotationHashes, context: UseContext, expected?: RotationExpectations): Promise<RotateResult>;
  /** The live family, if `tokenHash` is its current token's; never rotates. */
  current(familyId: string, tokenHash: string): Promise<Family | null>;
  /** The live family, or null (also for ids that are not family-id shaped). */
  get(familyId: string): Promise<Family | null>;
  /** The subject's live families, most recently used first. */
  listBySubject(subject: string): Promise<Family[]>;
  /**
   * The live families of a client, in no order. It walks every family (there is no index by
   * client): for rare admin operations such as deleting a client, never a request's path.
   */
  listByClient(clientId: string): Promise<Family[]>;
  /**
   * How many families are live, for a gauge sampled off the request path: exact when the
   * store can count them all within `sampleKeys` keys examined, else an estimate from a
   * sample of that many (`exact: false`). Bounded work whatever the store holds.
   */
  countLive(sampleKeys?: number): Promise<{ readonly count: number; readonly exact: boolean }>;
  /**
   * Revokes one family; resolves false when it did not exist (or had expired). With `ahead`,
   * a family that does not exist (yet) gets its marker all the same, and a later `create` of
   * that id is refused (FamilyRevokedError): what an authorization code presented twice
   * issued is revoked even while its first redemption is still creating it. That resolves
   * true too, unless the id's marker already lived: each revocation is told once.
   */
  revoke(familyId: string, options?: { readonly ahead?: boolean }): Promise<boolean>;
  /**
   * Revokes every family of `subject` except `exceptFamilyId`; resolves the count. Each
   * family is revoked atomically, the set is not: a rejection may leave some revoked, and
   * calling again finishes the job. First, atomically, it records that the subject's
   * sessions ended now (kept for ENDED_SESSIONS_TTL_MS): a later `create` whose
   * `signedInAt` is earlier is refused, so a sign-in in flight cannot outlive it.
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
}

/** Shared counters: in-process for dev, Redis so that limits hold across instances. */
export interface RateLimitBackend {
  limiter(options: RateLimitOptions): RateLimiter;
  /** The login attempts ledger (reserve, then settle), on the same backend. */
  attempts(): AttemptLedger;
}

/** One budget an attempt counts against: `points` failures per sliding `windowMs`. */
export interface AttemptBudget {
  readonly key: string;
  readonly points: number;
  readonly windowMs: number;
  /** A success also forgets this key's failures (account+IP: the owner got in). */
  readonly resetOnSuccess?: boolean;
}

export type AttemptReservation =
  | { readonly admitted: true }
  /**
   * `inFlight`: only attempts still being judged fill a budget (no failures do), so it may
   * free up in a moment; otherwise `retryAfterMs` is when the oldest failure that fills it expires.
   */
  | {
      readonly admitted: false;
      readonly retryAfterMs: number;
      readonly inFlight: boolean;
      /** The keys of the budgets that were full (which limits refused the attempt). */
      readonly full: readonly string[];
    };

/**
 * Throttled attempts in two steps, so that a right password is never refused for other
 * right passwords in flight, and an attempt that could not be judged costs nothing:
 * `reserve` holds one point of every budget (all or none) while the attempt is judged, for
 * `holdMs` at most; `settle` turns the hold into a failure kept for the budget's window,
 * or drops it. A budget is full when its failures and holds together reach `points`.
 * Settling an id twice, or one never reserved, is harmless; a settle sent after a
 * reservation whose reply never came (a stalled Redis) runs after it on the same
 * connection and so undoes it, and an unsettled hold lapses after `holdMs` in any case.
 * Time is the backend's own clock (Redis TIME).
 */
export interface AttemptLedger {
  reserve(id: string, budgets: readonly AttemptBudget[], holdMs: number): Promise<AttemptReservation>;
  /** Resolves, for a failure, the keys of the budgets it filled (their failures now reach `points`); otherwise none. */
  settle(id: string, budgets: readonly AttemptBudget[], outcome: 'succeeded' | 'failed' | 'released'): Promise<readonly string[]>;
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
  /** OpenID Connect: the request's `nonce`, echoed in the ID token. */
  readonly nonce?: string | undefined;
  /** The browser sign-in session's id (the ID token's `sid`). */
  readonly sid?: string | undefined;
  /** How the user authenticated (RFC 8176), e.g. `['pwd']`. */
  readonly amr?: readonly string[] | undefined;
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
  /**
   * The clients that received an ID token carrying this session's `sid` (`addClient`), in
   * the order they first did: who to tell by back-channel when it ends (OIDC Back-Channel
   * Logout §2.7), whether or not they also hold a refresh token.
   */
  readonly clientIds: readonly string[];
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
  /**
   * Records that `clientId` received tokens in the live session `sessionId` (once per client;
   * neither `lastSeenAt` nor the expiry moves). False when the session no longer exists.
   */
  addClient(sessionId: string, clientId: string): Promise<boolean>;
  /** Forgets `clientId` in the session (it was told the session ended another way); nothing when absent. */
  removeClient(sessionId: string, clientId: string): Promise<void>;
  /** The user's live sessions, most recently seen first. */
  listByUser(userId: string): Promise<BrowserSession[]>;
  /** Ends every session of the user except `exceptSessionId`; resolves the count. Each delete is atomic, the set is not: call again to finish. */
  deleteAllOfUser(userId: string, exceptSessionId?: string): Promise<number>;
}

// ---------------------------------------------------------------- back-channel logout deliveries

/** One logout token to deliver (OIDC Back-Channel Logout §2.5): to one client, for one ended session. */
export interface LogoutDelivery {
  /** Unique per delivery (also its key in the queue). */
  readonly id: string;
  readonly clientId: string;
  readonly sid: string;
  readonly sub: string;
  /** Deliveries tried so far. */
  readonly attempt: number;
}

/**
 * A durable queue of back-channel logout deliveries, so that a client's outage loses
 * nothing. `take` leases the due deliveries: they stay hidden from every other `take`
 * until `leaseMs` has passed, then come back unless `ack`ed or `retry`ed, so a worker
 * that dies mid-delivery loses nothing either (a delivery may then be made twice, which
 * the specification allows: the RP keys on `jti`/`sid`). Every method rejects with
 * StoreUnavailableError when the backend is unreachable.
 */
export interface LogoutQueue extends Pingable {
  /** Adds a delivery due at `dueAt` (ms since epoch). */
  push(delivery: LogoutDelivery, dueAt: number): Promise<void>;
  /** Up to `limit` deliveries due by `now`, leased until `now + leaseMs`, in one atomic step. */
  take(now: number, limit: number, leaseMs: number): Promise<LogoutDelivery[]>;
  /** Done (or given up): forgets the delivery. */
  ack(id: string): Promise<void>;
  /** Stores the delivery as given (its `attempt` counted) and makes it due at `dueAt`. */
  retry(delivery: LogoutDelivery, dueAt: number): Promise<void>;
}

// ---------------------------------------------------------------- event streams

/** One entry of a stream: its id (`<ms>-<seq>`, ordered) and its fields. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: Readonly<Record<string, string>>;
}

/**
 * An append-only log shared by every instance (a Redis Stream; an array in memory), with
 * consumer groups for at-least-once processing: an entry read by a group stays pending for
 * the consumer that read it until acknowledged, and another consumer can claim it (a
 * crashed instance's work). Generic: security events use one stream, other features may
 * use others. Retention: `append` trims the oldest entries beyond the store's `maxLen`
 * (approximately, for Redis: `XADD MAXLEN ~`); a trimmed entry that was pending reads as
 * `fields: null` (`readGroup` pending) or is dropped (`claim`).
 *
 * The lease is a small mutual exclusion beside the stream: one holder per name at a time,
 * for at most `ttlMs` after it last took or renewed it. Every method rejects with
 * StoreUnavailableError when the backend is unreachable.
 */
export interface EventStreamStore extends Pingable {
  /** Appends an entry; resolves its id. */
  append(fields: Readonly<Record<string, string>>): Promise<string>;
  /**
   * Entries after `after` ('0' = from the start, '$' = only new ones), waiting up to `blockMs`
   * when there are none yet. A blocking read holds its Redis connection meanwhile: give it a
   * store on a connection of its own (the events:tail script does).
   */
  read(after: string, options: { count: number; blockMs?: number }): Promise<StreamEntry[]>;
  /** The last `count` entries, oldest first. */
  recent(count: number): Promise<StreamEntry[]>;
  /** The last entry's id, or '0-0' when empty. */
  lastId(): Promise<string>;
  /** Creates `group` reading from `start` ('$' = entries appended from now on, '0' = all); nothing when it exists. */
  createGroup(group: string, start: '$' | '0'): Promise<void>;
  /**
   * `pending: false`: up to `count` entries never delivered to the group, now pending for
   * `consumer`. `pending: true`: up to `count` of `consumer`'s own pending entries (a trimmed
   * one with `fields: null`).
   */
  readGroup(group: string, consumer: string, options: { count: number; pending: boolean }): Promise<(StreamEntry | { id: string; fields: null })[]>;
  /** Acknowledges entries: no longer pending for anyone. */
  ack(group: string, ids: readonly string[]): Promise<void>;
  /** Moves every entry of `group` pending for longer than `minIdleMs` (to anyone) to `consumer`; resolves how many. */
  claim(group: string, consumer: string, minIdleMs: number): Promise<number>;
  /** Takes or renews the lease `name` for `holder`; false while someone else holds it. */
  holdLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up if `holder` has it. */
  releaseLease(name: string, holder: string): Promise<void>;
}

// ---------------------------------------------------------------- outgoing mail

/** One queued message as a worker sees it: the payload is opaque here (the mail service seals it). */
export interface QueuedMail {
  readonly id: string;
  readonly payload: string;
  /** How many times a worker has taken it so far, this time included (1 on the first try). */
  readonly deliveries: number;
}

/**
 * The durable outbox of mail (a Redis Stream with one consumer group; an in-process list
 * in dev). A message stays in the queue from `add` until `ack` or `bury`: a worker that
 * takes it and dies leaves it pending, and any worker takes it again once it has been idle
 * for the backoff `due` asks. At-least-once: a message can be handed out again only after
 * it was idle that long without an `ack`. Every method rejects with StoreUnavailableError
 * when the backend is unreachable.
 */
export interface MailQueueStore extends Pingable {
  /** Appends a message; resolves its id. */
  add(payload: string): Promise<string>;
  /** Messages never handed out before, now handed to `consumer` (at most `count`). */
  takeNew(consumer: string, count: number): Promise<QueuedMail[]>;
  /**
   * Messages handed out before and not acknowledged whose idle time (since they were last
   * handed out) has reached `dueAfterMs(deliveries)`; each is handed to `consumer`, only one
   * of several concurrent callers gets any one message.
   */
  takeDue(consumer: string, count: number, dueAfterMs: (deliveries: number) => number): Promise<QueuedMail[]>;
  /** Done: removes the message for good. */
  ack(id: string): Promise<void>;
  /** Given up: moves the message (payload and reason) out of the queue into the dead-letter list. */
  bury(id: string, payload: string, reason: string): Promise<void>;
  /** Messages still in the queue (taken or not). */
  size(): Promise<number>;
}

// ---------------------------------------------------------------- account tokens (mailed links)

/** What a mailed link's token stands for; only its hash is stored. */
export interface AccountTokenRecord {
  /** SHA-256 of the token's secret, base64url. */
  readonly hash: string;
  /** What the token is bound to besides the user (an address, a password version); compared by the service. */
  readonly binding: string;
  /** ms since epoch. */
  readonly expiresAt: number;
}

/**
 * The one live token per user and purpose (`email-verify`, `password-reset`, `email-change`):
 * `put` replaces the previous one, so a newer token kills every older one. Expiry is the
 * service's to judge (by its clock); the backend's TTL only collects garbage. Every method
 * rejects with StoreUnavailableError when the backend is unreachable.
 */
export interface AccountTokenStore {
  put(purpose: string, userId: string, record: AccountTokenRecord, ttlMs: number): Promise<void>;
  get(purpose: string, userId: string): Promise<AccountTokenRecord | null>;
  /** Deletes the record only if it still has `hash` (atomic): true for exactly one of concurrent takers. */
  take(purpose: string, userId: string, hash: string): Promise<boolean>;
}
