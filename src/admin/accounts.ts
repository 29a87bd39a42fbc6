/**
 * What the admin scripts do, as plain functions over the stores so they are testable
 * without a process: create an OAuth client (its secret returned once, stored as a hash)
 * and create a user (password hashed here, never stored or printed).
 */
import { generateClientSecret, hashClientSecret } from '../clients/secrets.js';
import { ConflictError, InvalidRequestError } from '../errors.js';
import { GRANT_TYPES, grantFor, isGrantType } from '../oauth/grants/index.js';
import { redirectUriProblem } from '../oauth/redirect-uri.js';
import { parseScope } from '../oauth/scope.js';
import type { Random } from '../random.js';
import { ID_TOKEN_SIGNING_ALGS, isIdTokenSigningAlg } from '../tokens/id-token.js';
import {
  DuplicateKeyError,
  type ClientPermission,
  type ClientRecord,
  type ClientStore,
  type NewClient,
  type UserRecord,
  type UserStore,
} from '../stores/types.js';
import { looksLikeEmail, normaliseEmail } from '../users/email.js';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, type PasswordHasher } from '../users/passwords.js';

export const PERMISSIONS: readonly ClientPermission[] = ['introspect', 'revoke', 'admin'];

export interface NewClientInput {
  readonly name: string;
  readonly clientId?: string | undefined;
  readonly grants: readonly string[];
  readonly scopes: readonly string[];
  readonly audiences: readonly string[];
  readonly permissions: readonly string[];
  readonly public: boolean;
  readonly firstParty: boolean;
  readonly cookieMode: boolean;
  readonly redirectUris?: readonly string[];
  readonly requirePar?: boolean;
  readonly postLogoutRedirectUris?: readonly string[];
  readonly backchannelLogoutUri?: string | undefined;
  /** OIDC Registration §2; RS256 when absent. */
  readonly idTokenSignedResponseAlg?: string | undefined;
}

export async function createClient(
  deps: { clients: Pick<ClientStore, 'create'>; random: Random },
  input: NewClientInput,
): Promise<{ client: ClientRecord; clientSecret: string | undefined }> {
  return saveClient(deps.clients, planClient(deps.random, input));
}

/** A checked client and its secret (shown once), before anything is stored: the script checks its arguments before it connects. */
export interface PlannedClient {
  readonly record: NewClient;
  readonly clientSecret: string | undefined;
}

export function planClient(random: Random, input: NewClientInput): PlannedClient {
  const name = input.name.trim();
  if (!name || name.length > 100) throw new InvalidRequestError('--name must be 1 to 100 characters');
  const clientId = input.clientId ?? `${slug(name)}-${random.token(6)}`;
  if (!/^[A-Za-z0-9._~-]{3,128}$/.test(clientId)) throw new InvalidRequestError('--id must be 3 to 128 characters of A-Z a-z 0-9 . _ ~ -');
  // RFC 9068 §6: a client's tokens carry sub = client_id; it must never read as a user's id
  // (24 lower-case hex characters, a MongoDB ObjectId), or an API keyed on sub could take one for the other.
  if (/^[0-9a-f]{24}$/.test(clientId))
    throw new InvalidRequestError('--id must not look like a user id (24 hex characters): client and user subjects must not collide');
  const grants = input.grants.length > 0 ? input.grants : input.public ? ['password', 'refresh_token'] : ['client_credentials'];
  const unknownGrant = grants.find((grant) => !isGrantType(grant));
  if (unknownGrant !== undefined) throw new InvalidRequestError(`--grant "${unknownGrant}" is not one of ${GRANT_TYPES.join(', ')}`);
  const shape = { type: input.public ? 'public' : 'confidential', firstParty: input.firstParty, redirectUris: input.redirectUris ?? [] } as const;
  const refused = grants.map((grant) => grantFor(grant)?.clientRule).find((rule) => rule && !rule.allows(shape));
  if (refused) {
    const defaults = input.grants.length === 0 ? ' (a --public client gets password and refresh_token unless --grant says otherwise)' : '';
    throw new InvalidRequestError(`${refused.cliRefusal}${defaults}`);
  }
  const unknownPermission = input.permissions.find((permission) => !PERMISSIONS.includes(permission as ClientPermission));
  if (unknownPermission !== undefined) throw new InvalidRequestError(`--permission "${unknownPermission}" is not one of ${PERMISSIONS.join(', ')}`);
  if (input.public && input.permissions.includes('introspect')) throw new InvalidRequestError('a --public client cannot introspect');
  if (input.permissions.includes('admin') && (input.public || !grants.includes('client_credentials')))
    throw new InvalidRequestError('--permission admin needs a confidential client with --grant client_credentials (the admin scope is obtained only that way)');
  for (const audience of input.audiences) {
    if (!/^https?:\/\/\S+$/.test(audience)) throw new InvalidRequestError(`--audience "${audience}" must be an http(s) URL`);
  }
  const scopes = input.scopes.flatMap((scope) => parseScope(scope));
  const redirectUris = [...new Set(input.redirectUris ?? [])];
  for (const uri of redirectUris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new InvalidRequestError(`--redirect-uri "${uri.slice(0, 200)}" ${problem}`);
  }
  const postLogoutRedirectUris = [...new Set(input.postLogoutRedirectUris ?? [])];
  for (const uri of postLogoutRedirectUris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new InvalidRequestError(`--post-logout-redirect-uri "${uri.slice(0, 200)}" ${problem}`);
  }
  const backchannelLogoutUri = input.backchannelLogoutUri;
  // Back-Channel Logout §2.2: an absolute http(s) URL without a fragment.
  if (backchannelLogoutUri !== undefined && !/^https?:\/\/[^\s#]+$/.test(backchannelLogoutUri))
    throw new InvalidRequestError(`--backchannel-logout-uri "${backchannelLogoutUri.slice(0, 200)}" must be an absolute http(s) URL without a fragment`);
  const idTokenAlg = input.idTokenSignedResponseAlg;
  if (idTokenAlg !== undefined && !isIdTokenSigningAlg(idTokenAlg)) {
    const why = idTokenAlg.toLowerCase() === 'none' ? ' (unsigned ID tokens are never issued)' : '';
    throw new InvalidRequestError(`--id-token-signed-response-alg "${idTokenAlg.slice(0, 20)}" is not one of ${ID_TOKEN_SIGNING_ALGS.join(', ')}${why}`);
  }

  const clientSecret = input.public ? undefined : generateClientSecret(random);
  return {
    clientSecret,
    record: {
      clientId,
      name,
      type: input.public ? 'public' : 'confidential',
      firstParty: input.firstParty,
      grantTypes: [...new Set(grants.filter(isGrantType))],
      scopes: [...new Set(scopes)],
      audiences: [...new Set(input.audiences)],
      permissions: [...new Set(input.permissions)] as ClientPermission[],
      cookieMode: input.cookieMode,
      redirectUris,
      requirePar: input.requirePar ?? false,
      postLogoutRedirectUris,
      backchannelLogoutUri,
      ...(idTokenAlg !== undefined && { idTokenSignedResponseAlg: idTokenAlg }),
      secretHash: clientSecret === undefined ? undefined : hashClientSecret(clientSecret),
    },
  };
}

export async function saveClient(
  clients: Pick<ClientStore, 'create'>,
  planned: PlannedClient,
): Promise<{ client: ClientRecord; clientSecret: string | undefined }> {
  try {
    return { client: await clients.create(planned.record), clientSecret: planned.clientSecret };
  } catch (err) {
    if (err instanceof DuplicateKeyError) throw new ConflictError(`a client with id "${planned.record.clientId}" already exists`);
    throw err;
  }
}

export interface NewUserInput {
  readonly email: string;
  readonly password: string;
  readonly roles: readonly string[];
  readonly name?: string | undefined;
}

export async function createUser(deps: { users: Pick<UserStore, 'create'>; hasher: Pick<PasswordHasher, 'hash'> }, input: NewUserInput): Promise<UserRecord> {
  const checked = checkNewUser(input);
  try {
    return await deps.users.create({ email: checked.email, name: checked.name, passwordHash: await deps.hasher.hash(checked.password), roles: checked.roles });
  } catch (err) {
    if (err instanceof DuplicateKeyError) throw new ConflictError(`a user with email ${checked.email} already exists`);
    throw err;
  }
}

/** The input checked and normalised, before anything is hashed or stored. */
export function checkNewUser(input: NewUserInput): NewUserInput & { readonly roles: string[] } {
  const email = normaliseEmail(input.email);
  if (!looksLikeEmail(email) || email.length > 254) throw new InvalidRequestError('--email must be an email address');
  if (input.password.length < PASSWORD_MIN_LENGTH || input.password.length > PASSWORD_MAX_LENGTH) {
    throw new InvalidRequestError(`the password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`);
  }
  const badRole = input.roles.find((role) => !/^[A-Za-z0-9_.:-]{1,64}$/.test(role));
  if (badRole !== undefined) throw new InvalidRequestError(`--role "${badRole}" must be 1 to 64 characters of A-Z a-z 0-9 _ . : -`);
  return { email, password: input.password, name: input.name, roles: [...new Set(input.roles)] };
}

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 40) || 'client'
  );
}
