/**
 * Offline verification of the authority's JWT access tokens (RFC 9068 §4), strict by
 * default: the checks a resource server most often gets subtly wrong are not options.
 *
 *  - the token is a compact JWS (three segments) of bounded size;
 *  - `alg` is asymmetric and on the allowlist (configured, or the authority's metadata):
 *    never `none`, never HMAC, never taken from the token alone;
 *  - `typ` is `at+jwt` (RFC 9068 §4 step 2), so an ID token or any other JWT from the same
 *    keys cannot pass for an access token;
 *  - the key is one the authority publishes, chosen by `kid`, of the type the alg needs;
 *  - `iss` is exactly the issuer and `aud` holds this API (RFC 9068 §4 steps 3-4);
 *  - `exp`, `nbf` (and a future `iat`) within a small clock tolerance;
 *  - `sub`, `client_id`, `jti`, `exp`, `iat` present and of the right type.
 *
 * Those rules are core.ts, which the authority's own Bearer check (its src/tokens/access-token.ts) runs too.
 * Verified tokens are cached (bounded, keyed by the token, never past `exp`), so an API
 * that sees the same token on many requests checks its signature once; every call still
 * checks the time claims, that the key is still published, the scopes, and introspection.
 */
import type { JWTPayload } from 'jose';
import {
  ASYMMETRIC_ALGORITHMS,
  checkAlgorithm,
  checkClaims,
  checkTimes,
  parseToken,
  verifySignature,
  type AccessTokenPayload,
  type SignatureKey,
} from './core.js';
import { TokenError } from './errors.js';
import type { FetchLike } from './http.js';
import {
  createIntrospector,
  DEFAULT_INTROSPECTION_CACHE_MS,
  MAX_INTROSPECTION_CACHE_MS,
  type IntrospectionOptions,
  type Introspector,
} from './introspection.js';
import { createKeySource, KeySourceUnavailable, type KeyLookup, type KeySource } from './jwks.js';
import { LruCache } from './lru.js';

export interface VerifierOptions {
  /** The authority's issuer identifier: `iss` must equal it exactly; also where its RFC 8414 metadata lives. */
  readonly issuer: string;
  /** This API's identifier(s): the token's `aud` must contain one of them, exactly. */
  readonly audience: string | readonly string[];
  /** Default: the metadata's `jwks_uri`. */
  readonly jwksUri?: string;
  /**
   * Allowed signing algorithms. Default: the metadata's `access_token_signing_alg_values_supported`
   * (asymmetric ones only), or RS256 when it lists none. `none` and HS* make construction throw.
   */
  readonly algorithms?: readonly string[];
  /** Seconds of tolerance on `exp`, `nbf` and `iat`; default 30. */
  readonly clockTolerance?: number;
  /** Scopes every token must carry (all of them); default none. */
  readonly requiredScopes?: readonly string[];
  /**
   * Minimum ms between two requests for the authority's documents, default 30 000: an
   * unknown `kid` triggers at most one JWKS refetch per cooldown, and so does a failure.
   */
  readonly cooldownMs?: number;
  /** Deadline of each request to the authority, ms; default 5000. */
  readonly timeoutMs?: number;
  /**
   * How long past its `max-age` the cached key set is still used while every refetch fails,
   * ms; default 900 000 (the authority's default access-token lifetime). After that, tokens
   * get 503 until a refetch succeeds: a key removed from the JWKS in an emergency must not
   * stay trusted for as long as someone can keep the verifier from reaching the authority.
   */
  readonly maxStaleMs?: number;
  /**
   * How many verified tokens to remember, a whole number; default 10 000, 0 turns the cache
   * off. A remembered token skips only the signature and claim parsing: each call still
   * checks `exp`, `nbf` and `iat` against the clock, that its key is still in the (fresh)
   * JWKS, the scopes, and asks introspection (through that cache's own rules) when set.
   */
  readonly cacheMaxEntries?: number;
  /** Also ask the authority's introspection endpoint (RFC 7662), to see revocations. */
  readonly introspect?: IntrospectionOptions;
  /** Default `globalThis.fetch`. */
  readonly fetch?: FetchLike;
  /** Milliseconds since the epoch, for `exp`, `nbf` and `iat` only; default `Date.now`. */
  readonly now?: () => number;
  /**
   * A monotonic clock in ms (any origin), for cache ages and cooldowns; default
   * `performance.now`. Unlike `now` it never steps back when the system clock is set, which
   * would keep a removed key trusted, or block refetches, for as long as the step.
   */
  readonly elapsed?: () => number;
  /**
   * Told about failed requests to the authority (the verifier carries on by its rules); default:
   * ignored. If it throws, that is ignored too: a logging hook cannot change a verdict.
   */
  readonly onError?: (error: Error) => void;
}

/** A verified access token's claims, typed (RFC 9068 §2.2). */
export interface VerifiedToken {
  readonly iss: string;
  /** The user id, or the client id for a client_credentials token. */
  readonly sub: string;
  readonly client_id: string;
  /** RFC 6749 §3.3: space-delimited, case-sensitive; empty when the token has none. */
  readonly scope: ReadonlySet<string>;
  /** RFC 9068 §2.2.3.1; empty when the token has none (client_credentials tokens). */
  readonly roles: readonly string[];
  readonly email: string | undefined;
  /** The authority's session (refresh family) the token belongs to, if any. */
  readonly sid: string | undefined;
  /** Always an array, whichever form the token used. */
  readonly aud: readonly string[];
  /** Seconds since the epoch. */
  readonly exp: number;
  readonly iat: number;
  readonly jti: string;
  /** The key that signed it. */
  readonly kid: string;
  /** Every claim as signed, including ones this type does not name. */
  readonly payload: Readonly<JWTPayload>;
}

export interface VerifyOptions {
  /** Scopes this call requires on top of `requiredScopes`. */
  readonly scopes?: readonly string[];
}

export interface Verifier {
  readonly issuer: string;
  readonly audience: readonly string[];
  /** The claims of a valid token; otherwise throws TokenError (and only TokenError). */
  verify(token: unknown, options?: VerifyOptions): Promise<VerifiedToken>;
}

export { MAX_TOKEN_LENGTH } from './core.js';

/** A verified token as remembered: the key that verified it must still be the published one. */
interface Remembered {
  readonly token: VerifiedToken;
  readonly key: SignatureKey;
}

/** Builds a verifier; throws TypeError on options that would make it unsafe or unusable. */
export function createVerifier(options: VerifierOptions): Verifier {
  const issuer = options.issuer;
  if (typeof issuer !== 'string' || issuer === '') throw new TypeError('createVerifier: issuer is required');
  const audience = typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])];
  if (audience.length === 0 || audience.some((aud) => typeof aud !== 'string' || aud === '')) {
    throw new TypeError("createVerifier: audience is required (this API's identifier, as the authority puts it in `aud`)");
  }
  if (options.algorithms !== undefined) checkAlgorithms(options.algorithms);
  const discovering = options.jwksUri === undefined || options.algorithms === undefined;
  if (discovering && !isHttpUrl(issuer))
    throw new TypeError('createVerifier: issuer must be an http(s) URL to discover its metadata (or give jwksUri and algorithms)');
  if (options.jwksUri !== undefined && !isHttpUrl(options.jwksUri)) throw new TypeError('createVerifier: jwksUri must be an http(s) URL');
  const clockTolerance = nonNegative(options.clockTolerance, 30, 'clockTolerance');
  const cooldownMs = nonNegative(options.cooldownMs, 30_000, 'cooldownMs');
  const timeoutMs = nonNegative(options.timeoutMs, 5000, 'timeoutMs');
  const maxStaleMs = nonNegative(options.maxStaleMs, 900_000, 'maxStaleMs');
  if (timeoutMs === 0) throw new TypeError('createVerifier: timeoutMs must be positive');
  const requiredScopes = [...(options.requiredScopes ?? [])];
  const fetch = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const now = options.now ?? Date.now;
  const elapsed = options.elapsed ?? (() => performance.now());
  const report = options.onError;
  // verify() promises to throw only TokenError: a throwing hook must not break that.
  const onError = (error: Error): void => {
    try {
      report?.(error);
    } catch {
      // ignored, see above
    }
  };

  const cacheMaxEntries = nonNegative(options.cacheMaxEntries, 10_000, 'cacheMaxEntries');
  if (!Number.isInteger(cacheMaxEntries)) throw new TypeError('createVerifier: cacheMaxEntries must be a whole number');
  const verified = cacheMaxEntries === 0 ? undefined : new LruCache<Remembered>(cacheMaxEntries, elapsed);
  const configuredAlgorithms = options.algorithms === undefined ? undefined : new Set(options.algorithms);
  /** A new key set drops the tokens of every kid it no longer holds. */
  const onKeySet = (kids: ReadonlySet<string>): void => {
    if (verified === undefined) return;
    const dropped: string[] = [];
    verified.forEach((entry, token) => {
      if (!kids.has(entry.token.kid)) dropped.push(token);
    });
    for (const token of dropped) verified.delete(token);
  };
  const keys: KeySource = createKeySource({
    issuer,
    jwksUri: options.jwksUri,
    algorithms: options.algorithms,
    fetch,
    elapsed,
    cooldownMs,
    timeoutMs,
    maxStaleMs,
    onError,
    onKeySet,
  });
  let introspector: Introspector | undefined;
  if (options.introspect !== undefined) {
    const { url, clientId, clientSecret } = options.introspect;
    if (!isHttpUrl(url) || !clientId || !clientSecret) throw new TypeError('createVerifier: introspect needs an http(s) url, clientId and clientSecret');
    const cacheMs = nonNegative(options.introspect.cacheMs, DEFAULT_INTROSPECTION_CACHE_MS, 'introspect.cacheMs');
    if (cacheMs > MAX_INTROSPECTION_CACHE_MS) {
      throw new TypeError(
        `createVerifier: introspect.cacheMs must be at most ${MAX_INTROSPECTION_CACHE_MS} ms; a longer cache would hide revocations, the one thing introspection is for`,
      );
    }
    const maxEntries = nonNegative(options.introspect.maxEntries, 10_000, 'introspect.maxEntries');
    if (!Number.isInteger(maxEntries)) throw new TypeError('createVerifier: introspect.maxEntries must be a whole number');
    introspector = createIntrospector({ ...options.introspect, cacheMs, maxEntries }, { fetch, now, elapsed, timeoutMs });
  }

  /** Signature and claims, through the shared core; remembered on success. */
  async function verifyFully(token: unknown): Promise<VerifiedToken> {
    const parsed = parseToken(token);
    // Judged before any network request: a junk alg costs the authority nothing.
    if (configuredAlgorithms !== undefined) checkAlgorithm(parsed.alg, configuredAlgorithms);
    const found = await keyFor(parsed.kid, parsed.alg);
    checkAlgorithm(parsed.alg, found.algorithms);
    if (found.key === undefined)
      throw new TokenError('invalid_token', 'the token is signed with an unknown key', { detail: `kid ${parsed.kid} (${parsed.alg}) is not in the JWKS` });
    await verifySignature(parsed, found.key);
    const nowMs = now();
    const claims = typedClaims(checkClaims(parsed.payload, { issuer, audience, clockTolerance }, nowMs), parsed.kid);
    verified?.set(token as string, { token: claims, key: found.key }, Math.max(1, (claims.exp + clockTolerance) * 1000 - nowMs));
    return claims;
  }

  /** The key, synchronously on the hot path; a key source that cannot answer is a 503. */
  function keyFor(kid: string, alg: string): KeyLookup | Promise<KeyLookup> {
    return (
      keys.peek(kid, alg) ??
      Promise.resolve(keys.key(kid, alg)).catch((err: unknown) => {
        if (err instanceof KeySourceUnavailable) {
          throw new TokenError('temporarily_unavailable', 'the token cannot be checked right now', { detail: err.message, cause: err });
        }
        throw err;
      })
    );
  }

  /** A remembered token, if its key is still the one the fresh JWKS publishes for it. */
  function remembered(token: unknown): VerifiedToken | undefined {
    if (verified === undefined || typeof token !== 'string') return undefined;
    const entry = verified.get(token);
    if (entry === undefined) return undefined;
    const current = keys.peek(entry.token.kid, entry.key.alg);
    if (current?.key !== entry.key || !current.algorithms.has(entry.key.alg)) return undefined;
    checkTimes(entry.token, clockTolerance, now());
    return entry.token;
  }

  async function verify(token: unknown, verifyOptions: VerifyOptions = {}): Promise<VerifiedToken> {
    const claims = remembered(token) ?? (await verifyFully(token));
    const required = verifyOptions.scopes === undefined ? requiredScopes : [...requiredScopes, ...verifyOptions.scopes];
    assertScopes(claims, required);

    if (introspector !== undefined) {
      let active: boolean;
      try {
        active = await introspector.isActive(token as string, claims.jti, claims.exp * 1000);
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)));
        throw new TokenError('temporarily_unavailable', 'the token cannot be checked right now', {
          detail: err instanceof Error ? err.message : String(err),
          cause: err,
        });
      }
      if (!active) throw new TokenError('revoked_token', 'the token has been revoked');
    }
    return claims;
  }

  return { issuer, audience, verify };
}

/** Throws insufficient_scope (403) unless the token carries every one of `scopes`. */
export function assertScopes(token: Pick<VerifiedToken, 'scope'>, scopes: readonly string[]): void {
  const missing = scopes.filter((scope) => !token.scope.has(scope));
  if (missing.length > 0) {
    throw new TokenError('insufficient_scope', `the token lacks the scope ${missing.join(' ')}`, { scope: [...new Set(scopes)] });
  }
}

/**
 * Throws insufficient_scope (403) unless the token carries at least one of `roles`; throws
 * TypeError when `roles` is empty, since "any one of none" would otherwise let every token in.
 */
export function assertRole(token: Pick<VerifiedToken, 'roles'>, roles: readonly string[]): void {
  checkRequirements('assertRole', 'role', roles);
  if (!roles.some((role) => token.roles.includes(role))) {
    throw new TokenError('insufficient_scope', `the token lacks the role ${roles.join(' or ')}`);
  }
}

/**
 * For the middleware factories: a `requireRole()` or `requireScope()` with nothing (or an
 * empty name) to require is a wiring mistake that would let every token through, so it is
 * refused when the route is built, at start-up, not found in production.
 */
export function checkRequirements(caller: string, what: string, names: readonly unknown[]): void {
  if (names.length === 0 || names.some((name) => typeof name !== 'string' || name === '')) {
    throw new TypeError(`${caller}: give at least one ${what}, each a non-empty string`);
  }
}

/** The kit's view of checked claims: typed, `aud` always an array, and frozen, since remembered tokens are shared. */
function typedClaims(payload: AccessTokenPayload, kid: string): VerifiedToken {
  const { iss, sub, aud, exp, iat, jti, client_id: clientId, scope, roles, email, sid } = payload;
  return Object.freeze({
    iss,
    sub,
    client_id: clientId,
    scope: frozenSet((scope ?? '').split(' ').filter((s) => s !== '')),
    roles: Object.freeze([...(roles ?? [])]),
    email,
    sid,
    aud: Object.freeze(typeof aud === 'string' ? [aud] : [...aud]),
    exp,
    iat,
    jti,
    kid,
    payload: deepFreeze(payload) as Readonly<JWTPayload>,
  });
}

/** A Set whose add, delete and clear throw: one caller must not change what the next is handed. */
function frozenSet(values: readonly string[]): ReadonlySet<string> {
  const set = new Set(values);
  const refuse = (): never => {
    throw new TypeError("a verified token's scopes cannot be changed");
  };
  Object.defineProperties(set, { add: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } });
  return Object.freeze(set);
}

/** The payload is our own parse of the token's JSON: freezing it in place copies nothing. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

function checkAlgorithms(algorithms: readonly string[]): void {
  if (!Array.isArray(algorithms) || algorithms.length === 0) throw new TypeError('createVerifier: algorithms must list at least one algorithm');
  for (const alg of algorithms) {
    if (typeof alg === 'string' && /^HS\d+$/i.test(alg)) {
      throw new TypeError(`createVerifier: ${alg} is an HMAC algorithm; the public key would be its secret and anyone could forge tokens`);
    }
    if (typeof alg === 'string' && alg.toLowerCase() === 'none') throw new TypeError('createVerifier: "none" means unsigned tokens; never allow it');
    if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.has(alg)) {
      throw new TypeError(`createVerifier: unsupported algorithm ${JSON.stringify(alg)} (one of ${[...ASYMMETRIC_ALGORITHMS].join(', ')})`);
    }
  }
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`createVerifier: ${name} must be a non-negative number`);
  return value;
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    return /^https?:$/.test(new URL(value).protocol);
  } catch {
    return false;
  }
}
