/**
 * What the admin API changes on an existing client or user, checked exactly as creation
 * checks it (`planClient`, `checkNewUser`): the client as it would be after the change
 * goes through the same rules, so an update can never make a client creation would refuse.
 */
import { InvalidRequestError } from '../errors.js';
import type { Random } from '../random.js';
import type { ClientChanges, ClientRecord } from '../stores/types.js';
import { planClient } from './accounts.js';

/** The fields of a client the admin API may change (PATCH /admin/clients/:id); absent = unchanged. */
export interface ClientUpdateInput {
  readonly name?: string | undefined;
  readonly grantTypes?: readonly string[] | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly audiences?: readonly string[] | undefined;
  readonly redirectUris?: readonly string[] | undefined;
  readonly postLogoutRedirectUris?: readonly string[] | undefined;
  readonly firstParty?: boolean | undefined;
  readonly requirePar?: boolean | undefined;
}

/** The checked, normalised changes to store; InvalidRequestError for anything creation would refuse. */
export function planClientChanges(random: Random, existing: ClientRecord, update: ClientUpdateInput): ClientChanges {
  if (Object.values(update).every((value) => value === undefined)) throw new InvalidRequestError('nothing to change: give at least one field');
  // Creation reads no grant as "the defaults"; an update must say which grants remain.
  if (update.grantTypes !== undefined && update.grantTypes.length === 0) throw new InvalidRequestError('grant_types must name at least one grant');
  const { record } = planClient(random, {
    name: update.name ?? existing.name,
    clientId: existing.clientId,
    grants: update.grantTypes ?? existing.grantTypes,
    scopes: update.scopes ?? existing.scopes,
    audiences: update.audiences ?? existing.audiences,
    permissions: existing.permissions,
    public: existing.type === 'public',
    firstParty: update.firstParty ?? existing.firstParty,
    cookieMode: existing.cookieMode,
    redirectUris: update.redirectUris ?? existing.redirectUris,
    requirePar: update.requirePar ?? existing.requirePar,
    postLogoutRedirectUris: update.postLogoutRedirectUris ?? existing.postLogoutRedirectUris,
    backchannelLogoutUri: existing.backchannelLogoutUri,
  });
  return {
    ...(update.name !== undefined && { name: record.name }),
    ...(update.grantTypes !== undefined && { grantTypes: record.grantTypes }),
    ...(update.scopes !== undefined && { scopes: record.scopes }),
    ...(update.audiences !== undefined && { audiences: record.audiences }),
    ...(update.redirectUris !== undefined && { redirectUris: record.redirectUris ?? [] }),
    ...(update.postLogoutRedirectUris !== undefined && { postLogoutRedirectUris: record.postLogoutRedirectUris ?? [] }),
    ...(update.firstParty !== undefined && { firstParty: record.firstParty }),
    ...(update.requirePar !== undefined && { requirePar: record.requirePar ?? false }),
  };
}

/** A user's roles, checked as `checkNewUser` checks them; duplicates dropped. */
export function checkRoles(roles: readonly string[]): string[] {
  const bad = roles.find((role) => !/^[A-Za-z0-9_.:-]{1,64}$/.test(role));
  if (bad !== undefined) throw new InvalidRequestError(`role "${bad.slice(0, 64)}" must be 1 to 64 characters of A-Z a-z 0-9 _ . : -`);
  return [...new Set(roles)];
}
