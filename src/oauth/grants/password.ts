/** RFC 6749 §4.3: resource owner password credentials, for first-party clients only. */
import { z } from 'zod';
import { EmailNotVerifiedError, InvalidGrantError } from '../../errors.js';
import { loginEmail, password, text } from '../../input.js';
import { requestedAudience, targetParameters } from './target.js';
import type { Grant } from './types.js';

const parameters = z.object({
  username: loginEmail,
  password,
  scope: text(1000).optional(),
  ...targetParameters,
});

export const passwordGrant: Grant<typeof parameters, 'password'> = {
  grantType: 'password',
  parameters,
  // §4.3 and RFC 9700 §2.4: only for clients the owner trusts with the password, i.e. our own apps.
  clientRule: {
    allows: (client) => client.firstParty,
    refusal: 'the password grant is only for first-party clients',
    cliRefusal: 'the password grant needs --first-party',
  },
  async handle({ client, params, context }, { tokens, users, clock }) {
    const signedInAt = clock.now();
    const user = await users.login({ email: params.username, password: params.password, ip: context.ip }).catch((err: unknown) => {
      // REQUIRE_VERIFIED_EMAIL: the token endpoint speaks only RFC 6749 §5.2 codes; the description tells it apart.
      if (err instanceof EmailNotVerifiedError) throw new InvalidGrantError(`email_not_verified: ${err.description}`, { detail: 'unverified email' });
      throw err;
    });
    const issued = await tokens.issueForUser({ user, client, scope: params.scope, audience: requestedAudience(params), context, signedInAt });
    return issued.response;
  },
};
