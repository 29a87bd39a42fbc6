/** RFC 6749 §4.4: confidential clients acting for themselves; no refresh token (§4.4.3). */
import { z } from 'zod';
import { UnauthorizedClientError } from '../../errors.js';
import { text } from '../../http/input.js';
import { requestedAudience, targetParameters } from './target.js';
import type { Grant } from './types.js';

const parameters = z.object({
  scope: text(1000).optional(),
  ...targetParameters,
});

export const clientCredentialsGrant: Grant<typeof parameters> = {
  grantType: 'client_credentials',
  parameters,
  async handle({ client, params }, { tokens }) {
    if (client.type !== 'confidential') throw new UnauthorizedClientError('client_credentials is only for confidential clients');
    return tokens.issueForClient({ client, scope: params.scope, audience: requestedAudience(params) });
  },
};
