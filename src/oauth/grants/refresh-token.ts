/**
 * RFC 6749 §6: refreshing rotates the family; a narrower scope may be asked for. A
 * family is bound to the one audience it was granted for: `resource` or `audience`
 * (RFC 8707 §2.2) may name it, anything else is `invalid_target`.
 */
import { z } from 'zod';
import { text } from '../../input.js';
import { storedScopeTokens } from '../scope.js';
import { userClaims } from '../user-claims.js';
import { requestedAudience, targetParameters } from './target.js';
import type { Grant } from './types.js';

const parameters = z.object({
  refresh_token: text(512),
  scope: text(1000).optional(),
  ...targetParameters,
});

export const refreshTokenGrant: Grant<typeof parameters, 'refresh_token'> = {
  grantType: 'refresh_token',
  parameters,
  async handle({ client, params, context }, { tokens, idTokens }) {
    const refreshed = await tokens.refresh({ refreshToken: params.refresh_token, client, scope: params.scope, audience: requestedAudience(params), context });
    const { response, family, user } = refreshed;
    const signIn = family.signIn;
    if (!signIn || !storedScopeTokens(response.scope).includes('openid')) return response;
    // OIDC Core §12.2: the same sub, auth_time and sid as the sign-in; no nonce.
    const idToken = await idTokens.issue({
      sub: user.id,
      clientId: client.clientId,
      alg: client.idTokenSignedResponseAlg,
      authTime: signIn.authTime,
      amr: signIn.amr,
      sid: signIn.sid,
      accessToken: response.access_token,
      claims: userClaims(user, response.scope),
    });
    return { ...response, id_token: idToken };
  },
};
