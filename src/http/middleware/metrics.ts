import type { Middleware } from 'koa';
import { OAuthError } from '../../errors.js';
import type { Metrics } from '../../metrics/metrics.js';

export type HttpMetrics = Pick<Metrics, 'httpRequest' | 'tokenIssued' | 'tokenRefused'>;

/**
 * Every request's duration by route template (as the request log names it: the template of
 * a matched route, `(no route)` for anything else, never a path), method and status class.
 * It sits outside the error handler, so the status is the one sent; the public documents
 * write their response themselves, so the status is read from the Node response.
 */
export function httpMetrics(metrics: HttpMetrics): Middleware {
  const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
  return async function measureRequest(ctx, next) {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const route = typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : '(no route)';
      const method = KNOWN_METHODS.has(ctx.method) ? ctx.method : 'other';
      metrics.httpRequest(route, method, ctx.res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}

/**
 * Token responses by grant and client, refusals by grant and OAuth error code. `grant`
 * names the grant of the route (`/auth/login` is a password check, `/auth/refresh` a
 * rotation); on the token endpoint it is the request's `grant_type` (labelled `other`
 * unless it is one of ours). The client of an issued token is a registered one: on the token
 * endpoint the authenticated client (every grant issues only to it), elsewhere the
 * `client_id` claim of the access token just signed. A refusal names no client: an unknown
 * client id is whatever a caller sent.
 */
export function tokenMetrics(metrics: HttpMetrics, grant?: string): Middleware {
  return async function countTokenResponse(ctx, next) {
    const grantType = grant ?? stringField(ctx.request.body, 'grant_type');
    try {
      await next();
    } catch (err) {
      metrics.tokenRefused(grantType, err instanceof OAuthError ? err.code : 'server_error');
      throw err;
    }
    const token = stringField(ctx.body, 'access_token');
    if (token === undefined) return;
    // Reading the claim costs a decode and a parse per token: only where no client was authenticated.
    const clientId = (ctx.state as { client?: { clientId: string } }).client?.clientId ?? tokenClient(token);
    if (clientId !== undefined) metrics.tokenIssued(grantType, clientId);
  };
}

function stringField(body: unknown, name: string): string | undefined {
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** The `client_id` claim of an access token of ours, just signed. */
function tokenClient(token: string): string | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return stringField(claims, 'client_id');
  } catch {
    return undefined;
  }
}
