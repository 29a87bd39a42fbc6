/** The OpenID Connect endpoints besides the code flow's: /oauth/userinfo (OIDC Core §5.3). */
import type { Context, Middleware } from 'koa';
import { InvalidRequestError } from '../../errors.js';
import { userInfo } from '../../oauth/user-claims.js';
import type { SessionService } from '../../sessions/service.js';

export interface OpenIdRouteDeps {
  readonly sessions: Pick<SessionService, 'authenticate'>;
}

export function createOpenIdRoutes(deps: OpenIdRouteDeps) {
  /**
   * RFC 6750 §2.1 (the Authorization header) or, on POST, §2.2 (an `access_token` form
   * field); never both (§2: one method per request).
   */
  function credentials(ctx: Context): string | readonly string[] | undefined {
    const header = ctx.req.headersDistinct.authorization;
    const body = ctx.method === 'POST' && ctx.request.body && typeof ctx.request.body === 'object' ? (ctx.request.body as Record<string, unknown>) : {};
    const field = body.access_token;
    if (field === undefined) return header;
    if (header !== undefined) throw new InvalidRequestError('send the access token once: in the Authorization header or the body, not both');
    if (typeof field !== 'string' || !ctx.request.is('application/x-www-form-urlencoded')) throw new InvalidRequestError('access_token must be a form field');
    return `Bearer ${field}`;
  }

  return {
    userinfo: async function userinfo(ctx: Context) {
      const caller = await deps.sessions.authenticate(credentials(ctx));
      ctx.body = userInfo(caller.claims, caller.user);
    } satisfies Middleware,
  };
}
