/** RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5): a code from the hosted sign-in, for tokens. */
import { z } from 'zod';
import { text } from '../../input.js';
import type { Grant } from './types.js';

const parameters = z.object({
  code: text(128),
  redirect_uri: text(2000),
  // RFC 7636 §4.1: 43 to 128 unreserved characters.
  code_verifier: z.string().regex(/^[A-Za-z0-9\-._~]{43,128}$/, 'must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)'),
});

export const authorizationCodeGrant: Grant<typeof parameters, 'authorization_code'> = {
  grantType: 'authorization_code',
  parameters,
  // RFC 6749 §3.1.2.2: the flow needs somewhere registered to send the user back to.
  clientRule: {
    allows: (client) => client.redirectUris.length > 0,
    refusal: 'the authorization code flow needs a registered redirect URI',
    cliRefusal: 'the authorization_code grant needs at least one --redirect-uri',
  },
  async handle({ client, params, context }, { codes }) {
    return codes.redeem({ code: params.code, redirectUri: params.redirect_uri, codeVerifier: params.code_verifier, client, context });
  },
};
