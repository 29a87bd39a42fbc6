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
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { TokenError } from './errors.js';
import { isObject, type FetchLike } from './http.js';
import { createIntrospector, DEFAULT_INTROSPECTION_CACHE_MS, MAX_INTROSPECTION_CACHE_MS, type IntrospectionOptions, type Introspector } from './introspection.js';
import { ASYMMETRIC_ALGORITHMS, createKeySource, KeySourceUnavailable, type KeySource } from './jwks.js';

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

/** Longer than any access token the authority issues; a bound on what we parse. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

const ACCESS_TOKEN_TYP = 'at+jwt';
const REQUIRED_CLAIMS = ['sub', 'client_id', 'jti', 'exp', 'iat'];
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Builds a verifier; throws TypeError on options that would make it unsafe or unusable. */
export function createVerifier(options: VerifierOptions): Verifier {
  const issuer = options.issuer;
  if (typeof issuer !== 'string' || issuer === '') throw new TypeError('createVerifier: issuer is required');
  const audience = typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])];
  if (audience.length === 0 || audience.some((aud) => typeof aud !== 'string' || aud === '')) {
    throw new TypeError('createVerifier: audience is required (this API\'s identifier, as the authority puts it in `aud`)');
  }
  if (options.algorithms !== undefined) checkAlgorithms(options.algorithms);
  const discovering = options.jwksUri === undefined || options.algorithms === undefined;
  if (discovering && !isHttpUrl(issuer)) throw new TypeError('createVerifier: issuer must be an http(s) URL to discover its metadata (or give jwksUri and algorithms)');
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

  const keys: KeySource = createKeySource({ issuer, jwksUri: options.jwksUri, algorithms: options.algorithms, fetch, elapsed, cooldownMs, timeoutMs, maxStaleMs, onError });
  let introspector: Introspector | undefined;
  if (options.introspect !== undefined) {
    const { url, clientId, clientSecret } = options.introspect;
    if (!isHttpUrl(url) || !clientId || !clientSecret) throw new TypeError('createVerifier: introspect needs an http(s) url, clientId and clientSecret');
    const cacheMs = nonNegative(options.introspect.cacheMs, DEFAULT_INTROSPECTION_CACHE_MS, 'introspect.cacheMs');
    if (cacheMs > MAX_INTROSPECTION_CACHE_MS) {
      throw new TypeError(`createVerifier: introspect.cacheMs must be at most ${MAX_INTROSPECTION_CACHE_MS} ms; a longer cache would hide revocations, the one thing introspection is for`);
    }
    const maxEntries = nonNegative(options.introspect.maxEntries, 10_000, 'introspect.maxEntries');
    if (!Number.isInteger(maxEntries)) throw new TypeError('createVerifier: introspect.maxEntries must be a whole number');
    introspector = createIntrospector({ ...options.introspect, cacheMs, maxEntries }, { fetch, now, elapsed, timeoutMs });
  }

  async function verify(token: unknown, verifyOptions: VerifyOptions = {}): Promise<VerifiedToken> {
    const header = parseCompact(token);
    const compact = token as string;

    const alg = header.alg;
    // Judged before any network request: a junk alg costs the authority nothing.
    if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.has(alg)) {
      throw new TokenError('invalid_token', 'the token\'s signing algorithm is not accepted', { detail: `alg ${JSON.stringify(alg)}` });
    }
    if (typeof header.typ !== 'string' || normalizeTyp(header.typ) !== ACCESS_TOKEN_TYP) {
      throw new TokenError('invalid_token', 'the token is not an access token (typ must be at+jwt)', { detail: `typ ${JSON.stringify(header.typ)}` });
    }
    const kid = header.kid;
    if (typeof kid !== 'string' || kid === '') throw new TokenError('invalid_token', 'the token names no signing key (kid)');

    const configured = options.algorithms;
    if (configured !== undefined && !configured.includes(alg)) {
      throw new TokenError('invalid_token', 'the token\'s signing algorithm is not accepted', { detail: `alg ${alg} is not on the allowlist` });
    }
    let key;
    try {
      // Key first: a refetch for a new kid also refreshes the metadata, whose alg list may have grown with it.
      key = await keys.key(kid, alg);
      if (!(await keys.algorithms()).has(alg)) {
        throw new TokenError('invalid_token', 'the token\'s signing algorithm is not accepted', { detail: `alg ${alg} is not on the allowlist` });
      }
    } catch (err) {
      if (err instanceof KeySourceUnavailable) {
        throw new TokenError('temporarily_unavailable', 'the token cannot be checked right now', { detail: err.message, cause: err });
      }
      throw err;
    }
    if (key === undefined) throw new TokenError('invalid_token', 'the token is signed with an unknown key', { detail: `kid ${kid} (${alg}) is not in the JWKS` });

    const nowMs = now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(compact, key, {
        algorithms: [alg],
        issuer,
        audience,
        typ: ACCESS_TOKEN_TYP,
        clockTolerance,
        currentDate: new Date(nowMs),
        requiredClaims: REQUIRED_CLAIMS,
      }));
    } catch (err) {
      throw fromJose(err);
    }
    const claims = typedClaims(payload, kid);
    if (claims.iat > nowMs / 1000 + clockTolerance) throw new TokenError('invalid_token', 'the token was issued in the future', { detail: `iat ${claims.iat}` });

    const required = verifyOptions.scopes === undefined ? requiredScopes : [...requiredScopes, ...verifyOptions.scopes];
    assertScopes(claims, required);

    if (introspector !== undefined) {
      let active: boolean;
      try {
        active = await introspector.isActive(compact, claims.jti, claims.exp * 1000);
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)));
        throw new TokenError('temporarily_unavailable', 'the token cannot be checked right now', { detail: err instanceof Error ? err.message : String(err), cause: err });
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

/** RFC 7515 §7.1 compact serialisation; returns the protected header. Throws malformed_token. */
function parseCompact(token: unknown): Record<string, unknown> {
  if (typeof token !== 'string') throw new TokenError('malformed_token', 'the token is not a string');
  if (token === '') throw new TokenError('malformed_token', 'the token is empty');
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('malformed_token', 'the token is too long');
  const parts = token.split('.');
  if (parts.length === 5) throw new TokenError('malformed_token', 'encrypted tokens (JWE) are not accepted');
  if (parts.length !== 3) throw new TokenError('malformed_token', 'the token is not a JWS in compact form (three segments)');
  if (!parts.every((part) => BASE64URL.test(part)) || parts[0] === '' || parts[1] === '') {
    throw new TokenError('malformed_token', 'the token is not base64url-encoded');
  }
  const header = decodeJson(parts[0]!);
  const payload = decodeJson(parts[1]!);
  if (!isObject(header)) throw new TokenError('malformed_token', 'the token header is not a JSON object');
  if (!isObject(payload)) throw new TokenError('malformed_token', 'the token payload is not a JSON object');
  return header;
}

function decodeJson(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function typedClaims(payload: JWTPayload, kid: string): VerifiedToken {
  const { iss, sub, aud, exp, iat, jti } = payload;
  const clientId = payload.client_id;
  const scope = payload.scope;
  const roles = payload.roles;
  const email = payload.email;
  const sid = payload.sid;
  const ok =
    typeof iss === 'string' &&
    // jose checked that ours is among them, not what else is: a number must not reach `aud`.
    (typeof aud === 'string' || (Array.isArray(aud) && aud.every((value) => typeof value === 'string'))) &&
    typeof sub === 'string' && sub !== '' &&
    typeof clientId === 'string' && clientId !== '' &&
    typeof jti === 'string' && jti !== '' &&
    typeof exp === 'number' &&
    typeof iat === 'number' &&
    (scope === undefined || typeof scope === 'string') &&
    (roles === undefined || (Array.isArray(roles) && roles.every((role) => typeof role === 'string'))) &&
    (email === undefined || typeof email === 'string') &&
    (sid === undefined || typeof sid === 'string');
  if (!ok) throw new TokenError('invalid_token', 'the token has claims of the wrong type');
  return Object.freeze({
    iss,
    sub,
    client_id: clientId,
    scope: new Set((scope ?? '').split(' ').filter((s) => s !== '')),
    roles: Object.freeze([...(roles as string[] | undefined ?? [])]),
    email,
    sid,
    aud: Object.freeze(typeof aud === 'string' ? [aud] : [...(aud as string[])]),
    exp,
    iat,
    jti,
    kid,
    payload: Object.freeze({ ...payload }),
  });
}

function fromJose(err: unknown): TokenError {
  const detail = err instanceof Error ? err.message : String(err);
  if (err instanceof errors.JWTExpired) return new TokenError('expired_token', 'the token has expired', { detail });
  if (err instanceof errors.JWTClaimValidationFailed) {
    const description =
      err.reason === 'missing' ? `the token lacks the ${err.claim} claim`
      : err.claim === 'iss' ? 'the token was issued by another authority'
      : err.claim === 'aud' ? 'the token is not meant for this API'
      : err.claim === 'nbf' ? 'the token is not valid yet'
      : err.claim === 'typ' ? 'the token is not an access token (typ must be at+jwt)'
      : `the token's ${err.claim} claim is invalid`;
    return new TokenError('invalid_token', description, { detail });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenError('invalid_token', 'the token signature is invalid', { detail });
  return new TokenError('invalid_token', 'the token is invalid', { detail });
}

/** RFC 9068 §4: `at+jwt` or `application/at+jwt`, compared case-insensitively (RFC 7515 §4.1.9). */
function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
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
