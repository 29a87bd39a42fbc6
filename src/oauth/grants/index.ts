/**
 * The grant registry: the one list of grant types. The token endpoint, the metadata's
 * `grant_types_supported`, the client record's type, the admin scripts and the MongoDB
 * schema all read it, so adding a grant is writing its module and adding it here.
 */
import { authorizationCodeGrant } from './authorization-code.js';
import { clientCredentialsGrant } from './client-credentials.js';
import { passwordGrant } from './password.js';
import { refreshTokenGrant } from './refresh-token.js';
import type { Grant } from './types.js';

const REGISTRY = [authorizationCodeGrant, passwordGrant, refreshTokenGrant, clientCredentialsGrant] as const;

/** A `grant_type` this server implements. */
export type GrantType = (typeof REGISTRY)[number]['grantType'];

export const GRANT_TYPES: readonly GrantType[] = REGISTRY.map((grant) => grant.grantType);

const byType: ReadonlyMap<string, Grant> = new Map(REGISTRY.map((grant) => [grant.grantType, grant as unknown as Grant]));

/** The grant for a `grant_type` parameter, or undefined when this server has none. */
export function grantFor(grantType: string): Grant | undefined {
  return byType.get(grantType);
}

export function isGrantType(value: string): value is GrantType {
  return byType.has(value);
}

export type { ClientRule, Grant, GrantDeps } from './types.js';
