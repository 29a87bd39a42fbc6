/**
 * The user's claims an OpenID Connect client may see (OIDC Core §5.4): `name` with the
 * `profile` scope, `email` and `email_verified` with `email`. Both the ID token and
 * /oauth/userinfo read this one function.
 */
import { InsufficientScopeError } from '../errors.js';
import type { UserRecord } from '../stores/types.js';
import type { AccessTokenClaims } from '../tokens/access-token.js';
import { storedScopeTokens } from './scope.js';

/** Every claim this server can release about a user (`claims_supported` adds the token's own). */
export const USER_CLAIMS = ['name', 'email', 'email_verified'] as const;

/** Whether the user's address is known to be theirs: confirmed through a mailed link (src/users/recovery.ts). */
const emailVerified = (user: UserRecord): boolean => user.emailVerified;

export function userClaims(user: UserRecord, scope: string): Record<string, unknown> {
  const scopes = storedScopeTokens(scope);
  return {
    ...(scopes.includes('profile') && user.name !== undefined && { name: user.name }),
    ...(scopes.includes('email') && { email: user.email, email_verified: emailVerified(user) }),
  };
}

/**
 * OIDC Core §5.3: the UserInfo response for a verified access token of `user`. The token
 * must come from an OpenID Connect request (the `openid` scope): RFC 6750 §3.1 otherwise.
 */
export function userInfo(claims: Pick<AccessTokenClaims, 'scope'>, user: UserRecord): Record<string, unknown> {
  if (!storedScopeTokens(claims.scope).includes('openid')) {
    throw new InsufficientScopeError('the access token was not issued with the openid scope', {
      headers: { 'WWW-Authenticate': 'Bearer error="insufficient_scope", error_description="the openid scope is required", scope="openid"' },
    });
  }
  return { sub: user.id, ...userClaims(user, claims.scope) };
}
