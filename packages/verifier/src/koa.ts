/**
 * Koa middleware. The context type is structural (the few members used), so the kit
 * compiles and runs without Koa installed, and any Koa 2/3 app or router accepts it.
 *
 *   router.get('/orders', requireToken(verifier), requireScope('orders:read'), listOrders);
 *
 * RFC 6750 §3.1: a malformed Authorization header → 400 `invalid_request`; no or bad token
 * → 401 with `WWW-Authenticate: Bearer …`; a valid token without the scope or role → 403
 * `insufficient_scope`. Bodies are `{"error", "error_description"}`.
 */
import { bearerToken } from './bearer.js';
import { TokenError } from './errors.js';
import { assertRole, assertScopes, checkRequirements, type Verifier, type VerifiedToken, type VerifyOptions } from './verifier.js';

/** What the middleware needs of a Koa context. */
export interface KoaContextLike {
  /** Request header, '' when absent (Koa's `ctx.get`). */
  get(field: string): string;
  /**
   * The Node request; its `headersDistinct` (Node ≥ 18.3) holds every Authorization header,
   * where `ctx.get` sees only the first.
   */
  readonly req?: { readonly headersDistinct?: { readonly authorization?: readonly string[] | undefined } };
  /** Response header. */
  set(field: string, value: string): void;
  status: number;
  body: unknown;
  state: object;
}

export type KoaMiddlewareLike = (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<void>;

/** `ctx.state` after `requireToken`: use as the state type of your app or router. */
export interface TokenState {
  token: VerifiedToken;
}

/**
 * Verifies the Bearer token and puts its claims on `ctx.state.token`. A TokenError thrown
 * further down (e.g. a handler calling `assertScopes` itself) is answered the same way.
 */
export function requireToken(verifier: Pick<Verifier, 'verify'>, options?: VerifyOptions): KoaMiddlewareLike {
  return async function requireToken(ctx, next) {
    try {
      const authorization = ctx.req?.headersDistinct?.authorization ?? (ctx.get('Authorization') || undefined);
      (ctx.state as TokenState).token = await verifier.verify(bearerToken(authorization), options);
      await next();
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      sendTokenError(ctx, err);
    }
  };
}

/** 403 unless the token has every one of `scopes`. After `requireToken`. Throws TypeError when given none. */
export function requireScope(...scopes: string[]): KoaMiddlewareLike {
  checkRequirements('requireScope', 'scope', scopes);
  return async function requireScope(ctx, next) {
    const token = tokenOf(ctx, 'requireScope');
    try {
      assertScopes(token, scopes);
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      return sendTokenError(ctx, err);
    }
    await next();
  };
}

/** 403 unless the token has at least one of `roles`. After `requireToken`. Throws TypeError when given none. */
export function requireRole(...roles: string[]): KoaMiddlewareLike {
  checkRequirements('requireRole', 'role', roles);
  return async function requireRole(ctx, next) {
    const token = tokenOf(ctx, 'requireRole');
    try {
      assertRole(token, roles);
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      return sendTokenError(ctx, err);
    }
    await next();
  };
}

/** Writes the RFC 6750 §3 response for `err`. */
export function sendTokenError(ctx: Pick<KoaContextLike, 'set' | 'status' | 'body'>, err: TokenError): void {
  ctx.status = err.status;
  if (err.wwwAuthenticate !== undefined) ctx.set('WWW-Authenticate', err.wwwAuthenticate);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = err.toJSON();
}

function tokenOf(ctx: KoaContextLike, name: string): VerifiedToken {
  const token = (ctx.state as Partial<TokenState>).token;
  // A wiring mistake, not a client error: fail loudly rather than answer 401 forever.
  if (token === undefined) throw new Error(`${name} must come after requireToken`);
  return token;
}
