/** RFC 6749 §4.3: resource owner password credentials, for first-party clients only. */
import { z } from 'zod';
import { UnauthorizedClientError } from '../../errors.js';
import { loginEmail, password, text } from '../../http/input.js';
import { requestedAudience, targetParameters } from './target.js';
import type { Grant } from './types.js';

const parameters = z.object({
  username: loginEmail,
  password,
  scope: text(1000).optional(),
  ...targetParameters,
});

export const passwordGrant: Grant<typeof parameters> = {
  grantType: 'password',
  parameters,
  async handle({ client, params, context }, { tokens, users }) {
    // §4.3: only for clients the owner trusts with the password, i.e. our own apps.
    if (!client.firstParty) throw new UnauthorizedClientError('the password grant is only for first-party clients');
    const user = await users.login({ email: params.username, password: params.password, ip: context.ip });
    const issued = await tokens.issueForUser({ user, client, scope: params.scope, audience: requestedAudience(params), context });
    return issued.response;
  },
};
