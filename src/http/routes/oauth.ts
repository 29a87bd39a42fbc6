/**
 * The OAuth endpoints (RFC 6749 token, RFC 7009 revocation, RFC 7662 introspection), each
 * a checklist of small named middlewares: no caching, read the client, authenticate it,
 * then one call into the token service.
 */
import type { Middleware } from 'koa';
import { z } from 'zod';
import { UnauthorizedClientError, UnsupportedGrantTypeError } from '../../errors.js';
import { readClientCredentials, type ClientAuthenticator } from '../../oauth/client-auth.js';
import { grantFor, type GrantDeps } from '../../oauth/grants/index.js';
import type { TokenService } from '../../oauth/token-service.js';
import { parseInput, text } from '../../input.js';
import { requestBody, useContext } from '../request.js';

export interface OAuthRouteDeps extends GrantDeps {
  readonly clientAuth: ClientAuthenticator;
  readonly tokens: TokenService;
}

type State = { client: Awaited<ReturnType<ClientAuthenticator['authenticate']>> };

/** RFC 6749 §5.1: token responses and errors must not be cached. */
export const noStore: Middleware = async function noStore(ctx, next) {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  await next();
};

export function authenticateClient({ clientAuth }: Pick<OAuthRouteDeps, 'clientAuth'>): Middleware<State> {
  return async function authenticateClient(ctx, next) {
    const body = requestBody(ctx);
    const credentials = readClientCredentials(ctx.get('Authorization') || undefined, body);
    ctx.state.client = await clientAuth.authenticate(credentials, ctx.ip);
    await next();
  };
}

const grantTypeParameter = z.object({ grant_type: text(100) });

export function exchangeGrant(deps: OAuthRouteDeps): Middleware<State> {
  return async function exchangeGrant(ctx) {
    const body = requestBody(ctx);
    const { grant_type } = parseInput(grantTypeParameter, body);
    const grant = grantFor(grant_type);
    if (!grant) throw new UnsupportedGrantTypeError(`grant_type "${grant_type.slice(0, 64)}" is not supported`);
    const client = ctx.state.client;
    if (!(client.grantTypes as readonly string[]).includes(grant.grantType)) {
      throw new UnauthorizedClientError(`this client may not use the ${grant.grantType} grant`);
    }
    const params = parseInput(grant.parameters, body);
    if (grant.clientRule && !grant.clientRule.allows(client)) throw new UnauthorizedClientError(grant.clientRule.refusal);
    ctx.body = await grant.handle({ client, params, context: useContext(ctx) }, deps);
  };
}

const tokenParameters = z.object({
  token: text(4096),
  token_type_hint: text(100).optional(),
});

export function revokeToken({ tokens }: Pick<OAuthRouteDeps, 'tokens'>): Middleware<State> {
  return async function revokeToken(ctx) {
    const params = parseInput(tokenParameters, requestBody(ctx));
    await tokens.revoke({ token: params.token, hint: params.token_type_hint, client: ctx.state.client });
    ctx.status = 200;
    ctx.body = {};
  };
}

export function introspectToken({ tokens }: Pick<OAuthRouteDeps, 'tokens'>): Middleware<State> {
  return async function introspectToken(ctx) {
    const params = parseInput(tokenParameters, requestBody(ctx));
    ctx.body = await tokens.introspect({ token: params.token, client: ctx.state.client });
  };
}
