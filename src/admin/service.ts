/**
 * The admin API's rules (issue 22): who may call it (our own access tokens carrying the
 * `admin` scope, issued by client_credentials to a client that still holds the `admin`
 * permission) and what each operation does over the stores. The HTTP layer only parses,
 * calls this and answers.
 */
import { InsufficientScopeError, InvalidTokenError, NotFoundError } from '../errors.js';
import { readManifest, type KeyMeta } from '../keys/key-files.js';
import { ADMIN_SCOPE, type TokenService } from '../oauth/token-service.js';
import { storedScopeTokens } from '../oauth/scope.js';
import type { Random } from '../random.js';
import type { ClientRecord, ClientStore, UserStore } from '../stores/types.js';
import type { PasswordHasher } from '../users/passwords.js';
import { createClient, createUser, type NewClientInput, type NewUserInput } from './accounts.js';

export interface AdminServiceDeps {
  readonly tokens: Pick<TokenService, 'authenticateBearer'>;
  /** Uncached: a withdrawn admin permission takes effect at once. */
  readonly clients: Pick<ClientStore, 'create' | 'findById'>;
  readonly users: Pick<UserStore, 'create'>;
  readonly hasher: Pick<PasswordHasher, 'hash'>;
  readonly random: Random;
  readonly keysDir: string;
}

/** The client acting through the admin API. */
export interface AdminCaller {
  readonly clientId: string;
}

export type AdminService = ReturnType<typeof createAdminService>;

export function createAdminService(deps: AdminServiceDeps) {
  const { tokens, clients } = deps;

  return {
    /**
     * The admin client behind a Bearer token: valid, not denied, carrying `admin`, issued to
     * a client for itself (no user: a user's token never carries `admin`, and is refused here
     * too), whose client still exists and holds the permission.
     */
    async authenticate(authorization: string | readonly string[] | undefined): Promise<AdminCaller> {
      const claims = await tokens.authenticateBearer(authorization);
      if (!storedScopeTokens(claims.scope).includes(ADMIN_SCOPE) || claims.sub !== claims.client_id || claims.email !== undefined) {
        throw new InsufficientScopeError(`the admin API needs an access token with the ${ADMIN_SCOPE} scope, issued to an admin client`);
      }
      const client = await clients.findById(claims.client_id);
      if (!client || !client.permissions.includes('admin')) throw new InvalidTokenError('the client of this access token is no longer an admin client');
      return { clientId: client.clientId };
    },

    async createClient(input: NewClientInput) {
      return createClient({ clients, random: deps.random }, input);
    },

    async createUser(input: NewUserInput) {
      return createUser({ users: deps.users, hasher: deps.hasher }, input);
    },

    async showClient(clientId: string): Promise<ClientRecord> {
      const client = await clients.findById(clientId);
      if (!client) throw new NotFoundError(`no client with id "${clientId.slice(0, 128)}"`);
      return client;
    },

    async listKeys(): Promise<readonly KeyMeta[]> {
      return (await readManifest(deps.keysDir)) ?? [];
    },
  };
}

/** A client as the admin API shows it: everything but the secret's hash. */
export function publicClient(client: ClientRecord) {
  return {
    client_id: client.clientId,
    name: client.name,
    type: client.type,
    first_party: client.firstParty,
    grant_types: [...client.grantTypes],
    scopes: [...client.scopes],
    audiences: [...client.audiences],
    permissions: [...client.permissions],
    cookie_mode: client.cookieMode,
    redirect_uris: [...client.redirectUris],
    require_par: client.requirePar,
    post_logout_redirect_uris: [...client.postLogoutRedirectUris],
    backchannel_logout_uri: client.backchannelLogoutUri ?? null,
    created_at: client.createdAt.toISOString(),
  };
}
