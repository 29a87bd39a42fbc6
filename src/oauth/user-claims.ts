/**
 * The user's claims an OpenID Connect client may see (OIDC Core §5.4): `name` with the
 * `profile` scope, `email` and `email_verified` with `email`. Both the ID token and
 * /oauth/userinfo read this one function.
 */
import type { UserRecord } from '../stores/types.js';
import { storedScopeTokens } from './scope.js';

/** Every claim this server can release about a user (`claims_supported` adds the token's own). */
export const USER_CLAIMS = ['name', 'email', 'email_verified'] as const;

/**
 * Whether the user's address is known to be theirs. Users do not record that yet, so no
 * address is vouched for; the one line to change when they do.
 */
const emailVerified = (_user: UserRecord): boolean => false;

export function userClaims(user: UserRecord, scope: string): Record<string, unknown> {
  const scopes = storedScopeTokens(scope);
  return {
    ...(scopes.includes('profile') && user.name !== undefined && { name: user.name }),
    ...(scopes.includes('email') && { email: user.email, email_verified: emailVerified(user) }),
  };
}
