import { clientCredentialsGrant } from './client-credentials.js';
import { passwordGrant } from './password.js';
import { refreshTokenGrant } from './refresh-token.js';
import type { Grant } from './types.js';

/** Adding a grant is adding a module here; nothing switches on grant_type. */
export const GRANTS: ReadonlyMap<string, Grant> = new Map(
  [passwordGrant, refreshTokenGrant, clientCredentialsGrant].map((grant) => [grant.grantType, grant as Grant]),
);

export type { Grant, GrantDeps } from './types.js';
