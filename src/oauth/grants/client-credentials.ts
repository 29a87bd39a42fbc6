/** RFC 6749 §4.4: confidential clients acting for themselves; no refresh token (§4.4.3). */
import { z } from 'zod';
import { text } from '../../input.js';
import { requestedAudience, targetParameters } from './target.js';
import type { Grant } from './types.js';

const parameters = z.object({
  scope: text(1000).optional(),
  ...targetParameters,
});

export const clientCredentialsGrant: Grant<typeof parameters, 'client_credentials'> = {
  grantType: 'client_credentials',
  parameters,
  // §4.4: the client authenticates as itself, which a public client cannot.
  clientRule: {
    allows: (client) => client.type === 'confidential',
    refusal: 'client_credentials is only for confidential clients',
    cliRefusal: 'a --public client cannot use client_credentials (it has no secret)',
  },
  async handle({ client, params }, { tokens }) {
    return tokens.issueForClient({ client, scope: params.scope, audience: requestedAudience(params) });
  },
};
