/**
 * One class per OAuth error code (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1).
 *
 * `description` may be shown to the client; `detail` is only logged, so it may name
 * internals (never secrets). The HTTP error middleware turns any other thrown value
 * into `ServerError` and logs the cause.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unsupported_response_type'
  | 'login_required'
  | 'consent_required'
  | 'request_not_supported'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'access_denied'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'email_not_verified'
  | 'too_many_requests'
  | 'temporarily_unavailable'
  | 'server_error';

export interface ErrorOptions {
  /** Logged, never sent to the client. */
  detail?: string;
  cause?: unknown;
  /** Extra response headers, e.g. `WWW-Authenticate` or `Retry-After`. */
  headers?: Record<string, string>;
}

export abstract class OAuthError extends Error {
  abstract readonly code: OAuthErrorCode;
  abstract readonly status: number;
  readonly description: string;
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;

  constructor(description: string, options: ErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.description = description;
    this.detail = options.detail;
    this.headers = { ...options.headers };
  }

  /** The body every error response carries. */
  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: descriptionChars(this.description) };
  }
}

export class InvalidRequestError extends OAuthError {
  readonly code = 'invalid_request';
  readonly status = 400;
}

/** RFC 6749 §5.2: 401 with `WWW-Authenticate` naming the scheme the client used (Basic by default). */
export class InvalidClientError extends OAuthError {
  readonly code = 'invalid_client';
  readonly status = 401;
  constructor(description = 'client authentication failed', options: ErrorOptions = {}) {
    super(description, { ...options, headers: { 'WWW-Authenticate': 'Basic realm="token-authority"', ...options.headers } });
  }
}

export class InvalidGrantError extends OAuthError {
  readonly code = 'invalid_grant';
  readonly status = 400;
}

export class UnauthorizedClientError extends OAuthError {
  readonly code = 'unauthorized_client';
  readonly status = 400;
}

export class UnsupportedGrantTypeError extends OAuthError {
  readonly code = 'unsupported_grant_type';
  readonly status = 400;
}

export class UnsupportedTokenTypeError extends OAuthError {
  readonly code = 'unsupported_token_type';
  readonly status = 400;
}

export class InvalidScopeError extends OAuthError {
  readonly code = 'invalid_scope';
  readonly status = 400;
}

/** RFC 8707 §2: the requested resource/audience is not one this client may have. */
export class InvalidTargetError extends OAuthError {
  readonly code = 'invalid_target';
  readonly status = 400;
}

/** RFC 6749 §4.1.2.1: only `response_type=code` is served. */
export class UnsupportedResponseTypeError extends OAuthError {
  readonly code = 'unsupported_response_type';
  readonly status = 400;
}

/** OpenID Connect Core §3.1.2.6, also used for OAuth `prompt=none`: the user must sign in. */
export class LoginRequiredError extends OAuthError {
  readonly code = 'login_required';
  readonly status = 400;
}

/** OpenID Connect Core §3.1.2.6: `prompt=none`, but the client needs the user's consent. */
export class ConsentRequiredError extends OAuthError {
  readonly code = 'consent_required';
  readonly status = 400;
}

/** OIDC Core §3.1.2.6: the `request` parameter is not supported. */
export class RequestNotSupportedError extends OAuthError {
  readonly code = 'request_not_supported';
  readonly status = 400;
}

/** RFC 6750 §3.1: 401 with `WWW-Authenticate: Bearer error="invalid_token"`. */
export class InvalidTokenError extends OAuthError {
  readonly code = 'invalid_token';
  readonly status = 401;
  constructor(description = 'the access token is invalid', options: ErrorOptions = {}) {
    super(description, {
      ...options,
      headers: { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${descriptionChars(description)}"`, ...options.headers },
    });
  }
}

/** RFC 6750 §3.1: 403 when the token lacks a required scope or role. */
export class InsufficientScopeError extends OAuthError {
  readonly code = 'insufficient_scope';
  readonly status = 403;
}

export class AccessDeniedError extends OAuthError {
  readonly code = 'access_denied';
  readonly status = 403;
}

export class NotFoundError extends OAuthError {
  readonly code = 'not_found';
  readonly status = 404;
}

export class MethodNotAllowedError extends OAuthError {
  readonly code = 'method_not_allowed';
  readonly status = 405;
}

/**
 * REQUIRE_VERIFIED_EMAIL: the password was right, but the account's address was never
 * confirmed. Thrown only after the password check, so it tells nothing to someone without it.
 */
export class EmailNotVerifiedError extends OAuthError {
  readonly code = 'email_not_verified';
  readonly status = 403;
  constructor(
    description = 'the email address of this account is not verified yet: open the link mailed to it (POST /auth/email/verify/resend sends a new one)',
    options: ErrorOptions = {},
  ) {
    super(description, options);
  }
}

export class ConflictError extends OAuthError {
  readonly code = 'conflict';
  readonly status = 409;
}

/** 413; `invalid_request` is the RFC 6749 §5.2 code for a request the server cannot take. */
export class PayloadTooLargeError extends OAuthError {
  readonly code = 'invalid_request';
  readonly status = 413;
}

/** 415; RFC 6749 §4.1.3/§3.2 bodies are form-encoded (we also accept JSON). */
export class UnsupportedMediaTypeError extends OAuthError {
  readonly code = 'invalid_request';
  readonly status = 415;
}

/** 429 with `Retry-After` in whole seconds (RFC 9110 §10.2.3). */
export class TooManyRequestsError extends OAuthError {
  readonly code = 'too_many_requests';
  readonly status = 429;
  constructor(retryAfterSeconds: number, description = 'too many attempts, try again later', options: ErrorOptions = {}) {
    super(description, { ...options, headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))), ...options.headers } });
  }
}

/** A dependency (Redis, MongoDB) is unreachable: fail closed with 503. */
export class TemporarilyUnavailableError extends OAuthError {
  readonly code = 'temporarily_unavailable';
  readonly status = 503;
  constructor(description = 'the service is temporarily unavailable, try again later', options: ErrorOptions = {}) {
    super(description, { ...options, headers: { 'Retry-After': '1', ...options.headers } });
  }
}

export class ServerError extends OAuthError {
  readonly code = 'server_error';
  readonly status = 500;
  constructor(description = 'internal server error', options: ErrorOptions = {}) {
    super(description, options);
  }
}

/** Any thrown value as an OAuthError; unknown ones become a ServerError carrying the cause. */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  return new ServerError(undefined, { cause: err, detail: err instanceof Error ? err.message : String(err) });
}

/**
 * RFC 6749 §5.2: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E. Descriptions
 * may quote what the client sent, so `"` becomes `'`, `\` becomes `/` and anything else
 * outside the set becomes `?`.
 */
export function descriptionChars(description: string): string {
  return description
    .replace(/"/g, "'")
    .replace(/\\/g, '/')
    .replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '?');
}

/**
 * A store's backend could not be reached or timed out. Never retried silently; the HTTP
 * layer answers it 503 `temporarily_unavailable`. Every store interface (`stores/types.ts`)
 * rejects with it.
 */
export class StoreUnavailableError extends Error {
  constructor(
    readonly store: string,
    options?: { cause?: unknown },
  ) {
    super(`${store} store unavailable`, options);
    this.name = 'StoreUnavailableError';
  }
}
