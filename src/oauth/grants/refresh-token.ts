/** RFC 6749 §6: refreshing rotates the family; a narrower scope may be asked for. */
import { z } from 'zod';
import { text } from '../../http/input.js';
import type { Grant } from './types.js';

const parameters = z.object({
  refresh_token: text(512),
  scope: text(1000).optional(),
});

export const refreshTokenGrant: Grant<typeof parameters> = {
  grantType: 'refresh_token',
  parameters,
  async handle({ client, params, context }, { tokens }) {
    const refreshed = await tokens.refresh({ refreshToken: params.refresh_token, client, scope: params.scope, context });
    return refreshed.response;
  },
};
