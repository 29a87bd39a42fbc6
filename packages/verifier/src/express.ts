/**
 * `(req, res, next)` middleware for Express, Connect, or plain `node:http`. The request and
 * response types are structural, so the kit needs none of those packages.
 *
 *   app.get('/orders', requireToken(verifier), requireScope('orders:read'), (req, res) => …);
 *
 * Claims go on `req.token` (and `res.locals.token` where `res.locals` exists). RFC 6750
 * §3.1: a malformed Authorization header → 400 `invalid_request`; no or bad token → 401
 * with `WWW-Authenticate: Bearer …`; a valid token without the scope or role → 403
 * `insufficient_scope`. Bodies are `{"error", "error_description"}`.
 */
import { bearerToken } from './bearer.js';
import { TokenError } from './errors.js';
import { assertRole, assertScopes, checkRequirements, type Verifier, type VerifiedToken, type VerifyOptions } from './verifier.js';

export interface NodeRequestLike {
  readonly headers: { readonly authorization?: string | undefined };
  /** Node ≥ 18.3: every value of each header; `headers` keeps only the first Authorization. */
  readonly headersDistinct?: { readonly authorization?: readonly string[] | undefined };
  /** Set by `requireToken`. */
  token?: VerifiedToken;
}

export interface NodeResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
  /** Express's per-response locals; the claims are put there too when it exists. */
  locals?: Record<string, unknown>;
  readonly headersSent?: boolean;
  readonly writableEnded?: boolean;
}

export type NextLike = (err?: unknown) => void;
export type NodeMiddlewareLike = (req: NodeRequestLike, res: NodeResponseLike, next: NextLike) => void;

/**
 * Verifies the Bearer token and puts its claims on `req.token`; answers 400/401/403/503
 * itself. When something else answered while the token was being checked (a timeout
 * middleware, say), it does nothing: neither a second response nor the route's handler.
 */
export function requireToken(verifier: Pick<Verifier, 'verify'>, options?: VerifyOptions): NodeMiddlewareLike {
  return function requireToken(req, res, next) {
    let pending: Promise<VerifiedToken>;
    try {
      pending = verifier.verify(bearerToken(req.headersDistinct?.authorization ?? req.headers.authorization), options);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending
      .then(
        (token) => {
          if (answered(res)) return;
          req.token = token;
          if (res.locals !== undefined) res.locals.token = token;
          next();
        },
        (err: unknown) => {
          if (answered(res)) return;
          if (err instanceof TokenError) sendTokenError(res, err);
          else next(err);
        },
      )
      // Nothing may escape as an unhandled rejection: that ends the process.
      .catch(next);
  };
}

/** 403 unless the token has every one of `scopes`. After `requireToken`. Throws TypeError when given none. */
export function requireScope(...scopes: string[]): NodeMiddlewareLike {
  checkRequirements('requireScope', 'scope', scopes);
  return function requireScope(req, res, next) {
    if (req.token === undefined) return next(new Error('requireScope must come after requireToken'));
    try {
      assertScopes(req.token, scopes);
    } catch (err) {
      return err instanceof TokenError ? sendTokenError(res, err) : next(err);
    }
    next();
  };
}

/** 403 unless the token has at least one of `roles`. After `requireToken`. Throws TypeError when given none. */
export function requireRole(...roles: string[]): NodeMiddlewareLike {
  checkRequirements('requireRole', 'role', roles);
  return function requireRole(req, res, next) {
    if (req.token === undefined) return next(new Error('requireRole must come after requireToken'));
    try {
      assertRole(req.token, roles);
    } catch (err) {
      return err instanceof TokenError ? sendTokenError(res, err) : next(err);
    }
    next();
  };
}

/** Express error middleware: answers TokenErrors thrown by handlers (e.g. `assertScopes`), passes the rest on. */
export function tokenErrorHandler(): (err: unknown, req: NodeRequestLike, res: NodeResponseLike, next: NextLike) => void {
  // Four declared parameters: that is how Express recognises an error handler.
  return function tokenErrorHandler(err, _req, res, next) {
    if (err instanceof TokenError && !answered(res)) return sendTokenError(res, err);
    next(err);
  };
}

/** Writes the RFC 6750 §3 response for `err`, unless a response was already sent. */
export function sendTokenError(res: NodeResponseLike, err: TokenError): void {
  if (answered(res)) return;
  res.statusCode = err.status;
  if (err.wwwAuthenticate !== undefined) res.setHeader('WWW-Authenticate', err.wwwAuthenticate);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(err.toJSON()));
}

function answered(res: NodeResponseLike): boolean {
  return res.headersSent === true || res.writableEnded === true;
}
