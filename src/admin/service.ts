/**
 * The admin API's rules (issue 22): who may call it (our own access tokens carrying the
 * `admin` scope, issued by client_credentials to a client that still holds the `admin`
 * permission) and what each operation does over the stores. The HTTP layer only parses,
 * calls this and answers.
 */
import { generateClientSecret, hashClientSecret } from '../clients/secrets.js';
import { InsufficientScopeError, InvalidRequestError, InvalidTokenError, NotFoundError } from '../errors.js';
import { adminAction, adminActor, userDisabled, type AdminAudit } from '../events/admin.js';
import { clientCreated } from '../events/clients.js';
import type { EventSink } from '../events/types.js';
import { readManifest, type KeyMeta } from '../keys/key-files.js';
import { ADMIN_SCOPE, type TokenService } from '../oauth/token-service.js';
import { storedScopeTokens } from '../oauth/scope.js';
import type { Random } from '../random.js';
import type { SessionService, SessionView } from '../sessions/service.js';
import type { ClientRecord, ClientStore, UserRecord, UserStore } from '../stores/types.js';
import { normaliseEmail } from '../users/email.js';
import type { PasswordHasher } from '../users/passwords.js';
import { publicUser } from '../users/service.js';
import { createClient, createUser, type NewClientInput, type NewUserInput } from './accounts.js';
import { checkRoles, planClientChanges, type ClientUpdateInput } from './changes.js';

export interface AdminServiceDeps {
  readonly tokens: Pick<TokenService, 'authenticateBearer'>;
  /** Uncached: a withdrawn admin permission, or any change made here, is read at once. */
  readonly clients: Pick<ClientStore, 'create' | 'findById' | 'list'>;
  /**
   * Where changes and deletions of clients are written: the client cache in front of the
   * store (clients/cache.ts), which drops its entry, so this instance's token endpoint
   * sees the change at once (others within CLIENT_CACHE_TTL). The store itself when there is no cache.
   */
  readonly clientWrites: Pick<ClientStore, 'update' | 'delete'>;
  /** The store whose every change is published to the other instances' user caches (users/cache.ts `publishUserChanges`). */
  readonly users: Pick<UserStore, 'create' | 'findById' | 'update' | 'delete' | 'listByEmailPrefix'>;
  /** Sessions end through the session service: back-channel logout and security events as for logout-all. */
  readonly sessions: Pick<SessionService, 'listOfUser' | 'endOneOfUser' | 'endAllOfUser' | 'endClientSessions'>;
  readonly hasher: Pick<PasswordHasher, 'hash'>;
  readonly random: Random;
  readonly keysDir: string;
  /** Security events: `admin.action` for every call, and what the operations cause. */
  readonly events?: EventSink | undefined;
}

/** One page of a listing, and the cursor of the next (undefined on the last page). */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextCursor: string | undefined;
}

export const PAGE_LIMIT_DEFAULT = 50;
export const PAGE_LIMIT_MAX = 200;

/** Cursors are the last key of a page, opaque to callers (base64url). */
const encodeCursor = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');
function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[A-Za-z0-9_-]+$/.test(cursor) || key === '' || encodeCursor(key) !== cursor) throw new InvalidRequestError('cursor is not one this API returned');
  return key;
}

/** Reads one more than asked: whether a next page exists is known without another round trip. */
async function paged<T>(
  limit: number,
  cursor: string | undefined,
  read: (limit: number, after: string | undefined) => Promise<T[]>,
  keyOf: (item: T) => string,
) {
  const found = await read(limit + 1, decodeCursor(cursor));
  const items = found.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: found.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : undefined };
}

/** The client acting through the admin API. */
export interface AdminCaller {
  readonly clientId: string;
}

export type AdminService = ReturnType<typeof createAdminService>;

export function createAdminService(deps: AdminServiceDeps) {
  const { tokens, clients, users, sessions, events } = deps;

  async function existingClient(clientId: string): Promise<ClientRecord> {
    const client = await clients.findById(clientId);
    if (!client) throw new NotFoundError(`no client with id "${clientId.slice(0, 128)}"`);
    return client;
  }

  async function existingUser(userId: string): Promise<UserRecord> {
    const user = await users.findById(userId);
    if (!user) throw new NotFoundError(`no user with id "${userId.slice(0, 64)}"`);
    return user;
  }

  /** Writes `changes`; a user deleted meanwhile is a 404 too. */
  async function updateUser(userId: string, changes: Parameters<UserStore['update']>[1]): Promise<UserRecord> {
    const user = await users.update(userId, changes);
    if (!user) throw new NotFoundError(`no user with id "${userId.slice(0, 64)}"`);
    return user;
  }

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

    /** The call's security event (`admin.action`); the log line is the HTTP layer's. */
    audit(caller: AdminCaller, audit: AdminAudit, outcome: 'ok' | 'refused', status: number): void {
      events?.emit(adminAction(caller.clientId, audit, outcome, status));
    },

    async createClient(input: NewClientInput, caller?: AdminCaller) {
      const created = await createClient({ clients, random: deps.random }, input);
      if (caller) events?.emit({ ...clientCreated(created.client, caller.clientId), actor: adminActor(caller.clientId) });
      return created;
    },

    async createUser(input: NewUserInput) {
      return createUser({ users, hasher: deps.hasher }, input);
    },

    showClient: existingClient,

    listClients: (limit: number, cursor: string | undefined): Promise<Page<ClientRecord>> =>
      paged(
        limit,
        cursor,
        (count, after) => clients.list({ limit: count, after }),
        (client) => client.clientId,
      ),

    /** Changes a client, checked as creation checks it. */
    async updateClient(clientId: string, update: ClientUpdateInput): Promise<ClientRecord> {
      const changes = planClientChanges(deps.random, await existingClient(clientId), update);
      const updated = await deps.clientWrites.update(clientId, changes);
      if (!updated) throw new NotFoundError(`no client with id "${clientId.slice(0, 128)}"`);
      return updated;
    },

    /** A new secret for a confidential client, returned once; the old one stops working at once (on this instance). */
    async rotateClientSecret(clientId: string): Promise<{ client: ClientRecord; clientSecret: string }> {
      const client = await existingClient(clientId);
      if (client.type !== 'confidential') throw new InvalidRequestError('a public client has no secret to rotate');
      const clientSecret = generateClientSecret(deps.random);
      const updated = await deps.clientWrites.update(clientId, { secretHash: hashClientSecret(clientSecret) });
      if (!updated) throw new NotFoundError(`no client with id "${clientId.slice(0, 128)}"`);
      return { client: updated, clientSecret };
    },

    /** Deletes a client and ends its refresh families; an admin client cannot delete itself (it would lock itself out mid-call). */
    async deleteClient(caller: AdminCaller, clientId: string): Promise<{ sessionsEnded: number }> {
      if (clientId === caller.clientId) throw new InvalidRequestError('an admin client cannot delete itself');
      await existingClient(clientId);
      if (!(await deps.clientWrites.delete(clientId))) throw new NotFoundError(`no client with id "${clientId.slice(0, 128)}"`);
      return { sessionsEnded: await sessions.endClientSessions(clientId, adminActor(caller.clientId)) };
    },

    /** Users whose email starts with `prefix` (normalised as emails are), in email order. */
    listUsers(prefix: string, limit: number, cursor: string | undefined): Promise<Page<UserRecord>> {
      const normalised = normaliseEmail(prefix);
      return paged(
        limit,
        cursor,
        (count, after) => users.listByEmailPrefix(normalised, { limit: count, after }),
        (user) => user.email,
      );
    },

    showUser: existingUser,

    async setRoles(userId: string, roles: readonly string[]): Promise<UserRecord> {
      return updateUser(userId, { roles: checkRoles(roles) });
    },

    /**
     * Disables the user (no login, no refresh from now on) and ends every session they have,
     * as logout-all does. Disabling a disabled user ends nothing more and emits nothing.
     */
    async disableUser(caller: AdminCaller, userId: string): Promise<{ user: UserRecord; sessionsEnded: number }> {
      const before = await existingUser(userId);
      const user = await updateUser(userId, { disabled: true });
      const sessionsEnded = await sessions.endAllOfUser(user, 'disabled_user', adminActor(caller.clientId));
      if (!before.disabled) events?.emit(userDisabled(caller.clientId, user, sessionsEnded));
      return { user, sessionsEnded };
    },

    enableUser: (userId: string): Promise<UserRecord> => updateUser(userId, { disabled: false }),

    /** Deletes the user and ends every session they had. */
    async deleteUser(caller: AdminCaller, userId: string): Promise<{ sessionsEnded: number }> {
      const user = await existingUser(userId);
      if (!(await users.delete(userId))) throw new NotFoundError(`no user with id "${userId.slice(0, 64)}"`);
      return { sessionsEnded: await sessions.endAllOfUser(user, 'user_deleted', adminActor(caller.clientId)) };
    },

    async listUserSessions(userId: string): Promise<SessionView[]> {
      await existingUser(userId);
      return sessions.listOfUser(userId);
    },

    async endUserSession(caller: AdminCaller, userId: string, sessionId: string): Promise<void> {
      await existingUser(userId);
      await sessions.endOneOfUser(userId, sessionId, adminActor(caller.clientId));
    },

    async endUserSessions(caller: AdminCaller, userId: string): Promise<number> {
      const user = await existingUser(userId);
      return sessions.endAllOfUser(user, 'admin_ended', adminActor(caller.clientId));
    },

    async listKeys(): Promise<readonly KeyMeta[]> {
      return (await readManifest(deps.keysDir)) ?? [];
    },
  };
}

/** A user as the admin API shows it: the profile, whether disabled, never the password hash. */
export function adminUser(user: UserRecord) {
  return { ...publicUser(user), disabled: user.disabled, updated_at: user.updatedAt.toISOString() };
}

/** A session (refresh family) as the admin API shows it. */
export function adminSession(session: SessionView) {
  return {
    id: session.id,
    client_id: session.clientId,
    created_at: new Date(session.createdAt).toISOString(),
    last_used_at: new Date(session.lastUsedAt).toISOString(),
    user_agent: session.userAgent ?? null,
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
    id_token_signed_response_alg: client.idTokenSignedResponseAlg,
    created_at: client.createdAt.toISOString(),
  };
}
