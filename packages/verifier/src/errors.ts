/**
 * The one error a resource server has to handle. `code` is stable and precise (switch on
 * it); `status` and `wwwAuthenticate` are ready for an RFC 6750 §3 response, whose header
 * may only carry `invalid_request`, `invalid_token` or `insufficient_scope` (§3.1), so
 * the precise codes are folded into `invalid_token` there.
 */

export type TokenErrorCode =
  /** No Bearer credentials at all (RFC 6750 §3.1: the challenge then carries no error). */
  | 'missing_token'
  /**
   * The Authorization header itself is malformed: `Bearer` without a token, a token with
   * characters a b64token cannot hold, or more than one Authorization header. 400 (RFC 6750 §3.1).
   */
  | 'invalid_request'
  /** Not a compact JWS: wrong number of segments, bad base64url or JSON, not a string, too long. */
  | 'malformed_token'
  /** A JWT we must not accept: bad signature, unknown key, disallowed alg or typ, a `crit` header, wrong iss or aud, nbf or iat ahead, claims missing or of the wrong type. */
  | 'invalid_token'
  /** Genuine, but past `exp` (plus the clock tolerance). */
  | 'expired_token'
  /** Genuine and unexpired, but the authority's introspection endpoint says it is no longer active. */
  | 'revoked_token'
  /** Valid, but lacks a scope (or role) the resource requires: 403, not 401. */
  | 'insufficient_scope'
  /**
   * The verifier cannot decide: the authority's metadata, JWKS (never fetched yet) or
   * introspection endpoint is unreachable. 503, fail closed. The name is RFC 6749 §4.1.2.1's.
   */
  | 'temporarily_unavailable';

export type TokenErrorStatus = 400 | 401 | 403 | 503;

const STATUS: Readonly<Record<TokenErrorCode, TokenErrorStatus>> = {
  missing_token: 401,
  invalid_request: 400,
  malformed_token: 401,
  invalid_token: 401,
  expired_token: 401,
  revoked_token: 401,
  insufficient_scope: 403,
  temporarily_unavailable: 503,
};

export interface TokenErrorOptions {
  /** For insufficient_scope: the scopes the resource requires (RFC 6750 §3 `scope` attribute). */
  readonly scope?: readonly string[];
  /** Why, for logs only: never sent to the client. */
  readonly detail?: string;
  readonly cause?: unknown;
}

export class TokenError extends Error {
  override readonly name = 'TokenError';
  readonly code: TokenErrorCode;
  readonly status: TokenErrorStatus;
  /** Safe to show the client: the `error_description`. Same as `message`. */
  readonly description: string;
  /** For logs only. */
  readonly detail: string | undefined;
  /** Required scopes, on insufficient_scope. */
  readonly scope: readonly string[] | undefined;
  /** The `WWW-Authenticate` value for this error; undefined for 503, which is no authentication failure. */
  readonly wwwAuthenticate: string | undefined;

  constructor(code: TokenErrorCode, description: string, options: TokenErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = STATUS[code];
    this.description = description;
    this.detail = options.detail;
    this.scope = options.scope;
    this.wwwAuthenticate = challenge(code, description, options.scope);
  }

  /** The JSON error body: `{"error", "error_description"}` with the precise code. */
  toJSON(): { error: TokenErrorCode; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

export function isTokenError(value: unknown): value is TokenError {
  return value instanceof TokenError;
}

function challenge(code: TokenErrorCode, description: string, scope: readonly string[] | undefined): string | undefined {
  if (code === 'temporarily_unavailable') return undefined;
  // §3.1: a request without any authentication information gets a bare challenge.
  if (code === 'missing_token') return 'Bearer';
  const error = code === 'insufficient_scope' || code === 'invalid_request' ? code : 'invalid_token';
  const params = [`error="${error}"`, `error_description="${quotable(description)}"`];
  if (scope !== undefined && scope.length > 0) params.push(`scope="${quotable(scope.join(' '))}"`);
  return `Bearer ${params.join(', ')}`;
}

/**
 * RFC 6750 §3: `error_description` and `scope` values are limited to %x20-21 / %x23-5B /
 * %x5D-7E, so a `"` or `\` (or anything unprintable) can never break out of the quotes.
 */
function quotable(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?');
}
