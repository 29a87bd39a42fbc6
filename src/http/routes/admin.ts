/**
 * The admin API (`/admin/*`, issue 22): Bearer tokens with the `admin` scope, checked by the
 * admin service; each handler parses, calls it and answers. Every call is audited in the
 * log with the acting client, the action and its target, never a secret.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import { z } from 'zod';
import { ADMIN_OPENAPI } from '../../admin/openapi.js';
import { adminSession, adminUser, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, publicClient, type AdminCaller, type AdminService } from '../../admin/service.js';
import { InvalidRequestError, OAuthError } from '../../errors.js';
import type { AdminAudit } from '../../events/admin.js';
import type { Logger } from '../../log.js';
import { parseInput, text } from '../../input.js';
import { requestBody } from '../request.js';

type AdminState = { admin: AdminCaller; audit?: AdminAudit };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Context = ParameterizedContext<AdminState, any>;

const list = (max: number) => z.array(text(max)).max(50).default([]);
const newClientBody = z.object({
  name: text(100),
  client_id: text(128).optional(),
  grant_types: list(64),
  scopes: list(1000),
  audiences: list(2000),
  permissions: list(32),
  redirect_uris: list(2000),
  public: z.boolean().default(false),
  first_party: z.boolean().default(false),
  cookie_mode: z.boolean().default(false),
  require_par: z.boolean().default(false),
  post_logout_redirect_uris: list(2000),
  backchannel_logout_uri: text(2000).optional(),
  id_token_signed_response_alg: text(20).optional(),
});

/** PATCH /admin/clients/:id: only what may change; anything else named is refused, not ignored. */
const changedList = (max: number) => z.array(text(max)).max(50).optional();
const clientChangesBody = z.strictObject({
  name: text(100).optional(),
  grant_types: changedList(64),
  scopes: changedList(1000),
  audiences: changedList(2000),
  redirect_uris: changedList(2000),
  post_logout_redirect_uris: changedList(2000),
  first_party: z.boolean().optional(),
  require_par: z.boolean().optional(),
});

const newUserBody = z.object({ email: text(254), password: text(1024), roles: list(64), name: text(100).optional() });
const rolesBody = z.object({ roles: z.array(text(64)).max(50) });

const pageQuery = {
  limit: z
    .string()
    .regex(/^[0-9]{1,4}$/, 'must be a whole number')
    .transform(Number)
    .refine((value) => value >= 1 && value <= PAGE_LIMIT_MAX, `must be 1 to ${PAGE_LIMIT_MAX}`)
    .optional(),
  cursor: text(1000).optional(),
};
const clientsQuery = z.object(pageQuery);
const usersQuery = z.object({
  ...pageQuery,
  email_prefix: z
    .string()
    .max(254, 'must be at most 254 characters')
    .refine((value) => !value.includes('\u0000'), 'must not contain NUL characters')
    .default(''),
});

const param = (ctx: Context, name: string): string => (ctx as unknown as { params: Record<string, string | undefined> }).params[name] ?? '';
/** Query parameters, each given at most once. */
function query(ctx: Context): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(ctx.query as Record<string, string | string[] | undefined>)) {
    if (Array.isArray(value)) throw new InvalidRequestError(`${name.slice(0, 64)}: given more than once`);
    if (typeof value === 'string') values[name] = value;
  }
  return values;
}

export function createAdminRoutes(deps: { admin: AdminService; logger: Logger }) {
  const { admin, logger } = deps;

  /** Authenticates the caller, then audits what the handler named as its action: a log line and an `admin.action` event. */
  const requireAdmin: Middleware<AdminState> = async function requireAdmin(ctx, next) {
    ctx.state.admin = await admin.authenticate(ctx.req.headersDistinct.authorization);
    ctx.set('Cache-Control', 'no-store');
    const audit = (outcome: 'ok' | 'refused', status: number) => {
      const named = ctx.state.audit ?? { action: `${ctx.method} ${ctx.path.slice(0, 200)}` };
      logger.info({ audit: { actor: ctx.state.admin.clientId, ...named, outcome, status } }, 'admin action');
      admin.audit(ctx.state.admin, named, outcome, status);
    };
    try {
      await next();
      audit('ok', ctx.status);
    } catch (err) {
      audit('refused', err instanceof OAuthError ? err.status : 500);
      throw err;
    }
  };

  const openapi: Middleware = async function openapi(ctx) {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = ADMIN_OPENAPI;
  };

  const createClient: Middleware<AdminState> = async function createClient(ctx) {
    ctx.state.audit = { action: 'client.create' };
    const body = parseInput(newClientBody, requestBody(ctx));
    const { client, clientSecret } = await admin.createClient(
      {
        name: body.name,
        clientId: body.client_id,
        grants: body.grant_types,
        scopes: body.scopes,
        audiences: body.audiences,
        permissions: body.permissions,
        redirectUris: body.redirect_uris,
        public: body.public,
        firstParty: body.first_party,
        cookieMode: body.cookie_mode,
        requirePar: body.require_par,
        postLogoutRedirectUris: body.post_logout_redirect_uris,
        backchannelLogoutUri: body.backchannel_logout_uri,
        idTokenSignedResponseAlg: body.id_token_signed_response_alg,
      },
      ctx.state.admin,
    );
    ctx.state.audit = { action: 'client.create', target: client.clientId };
    ctx.status = 201;
    ctx.body = { client: publicClient(client), ...(clientSecret !== undefined && { client_secret: clientSecret }) };
  };

  const listClients: Middleware<AdminState> = async function listClients(ctx) {
    ctx.state.audit = { action: 'client.list' };
    const parsed = parseInput(clientsQuery, query(ctx as Context));
    const page = await admin.listClients(parsed.limit ?? PAGE_LIMIT_DEFAULT, parsed.cursor);
    ctx.body = { clients: page.items.map(publicClient), next_cursor: page.nextCursor ?? null };
  };

  const showClient: Middleware<AdminState> = async function showClient(ctx) {
    const clientId = param(ctx as Context, 'client_id');
    ctx.state.audit = { action: 'client.show', target: clientId };
    ctx.body = { client: publicClient(await admin.showClient(clientId)) };
  };

  const updateClient: Middleware<AdminState> = async function updateClient(ctx) {
    const clientId = param(ctx as Context, 'client_id');
    ctx.state.audit = { action: 'client.update', target: clientId };
    const body = parseInput(clientChangesBody, requestBody(ctx));
    const client = await admin.updateClient(clientId, {
      name: body.name,
      grantTypes: body.grant_types,
      scopes: body.scopes,
      audiences: body.audiences,
      redirectUris: body.redirect_uris,
      postLogoutRedirectUris: body.post_logout_redirect_uris,
      firstParty: body.first_party,
      requirePar: body.require_par,
    });
    ctx.body = { client: publicClient(client) };
  };

  const rotateSecret: Middleware<AdminState> = async function rotateSecret(ctx) {
    const clientId = param(ctx as Context, 'client_id');
    ctx.state.audit = { action: 'client.rotate_secret', target: clientId };
    const { client, clientSecret } = await admin.rotateClientSecret(clientId);
    ctx.body = { client: publicClient(client), client_secret: clientSecret };
  };

  const deleteClient: Middleware<AdminState> = async function deleteClient(ctx) {
    const clientId = param(ctx as Context, 'client_id');
    ctx.state.audit = { action: 'client.delete', target: clientId };
    const { sessionsEnded } = await admin.deleteClient(ctx.state.admin, clientId);
    ctx.body = { deleted: true, sessions_ended: sessionsEnded };
  };

  const createUser: Middleware<AdminState> = async function createUser(ctx) {
    ctx.state.audit = { action: 'user.create' };
    const body = parseInput(newUserBody, requestBody(ctx));
    const user = await admin.createUser({ email: body.email, password: body.password, roles: body.roles, name: body.name });
    ctx.state.audit = { action: 'user.create', target: user.id };
    ctx.status = 201;
    ctx.body = { user: adminUser(user) };
  };

  const listUsers: Middleware<AdminState> = async function listUsers(ctx) {
    ctx.state.audit = { action: 'user.list' };
    const parsed = parseInput(usersQuery, query(ctx as Context));
    const page = await admin.listUsers(parsed.email_prefix, parsed.limit ?? PAGE_LIMIT_DEFAULT, parsed.cursor);
    ctx.body = { users: page.items.map(adminUser), next_cursor: page.nextCursor ?? null };
  };

  /** The handlers on /admin/users/:user_id: each names its action, calls the service, answers. */
  const onUser = (action: string, handle: (ctx: Context, userId: string) => Promise<unknown>): Middleware<AdminState> =>
    async function userAction(ctx) {
      const userId = param(ctx as Context, 'user_id');
      ctx.state.audit = { action, target: userId };
      ctx.body = await handle(ctx as Context, userId);
    };

  const showUser = onUser('user.show', async (_ctx, userId) => ({ user: adminUser(await admin.showUser(userId)) }));
  const setRoles = onUser('user.set_roles', async (ctx, userId) => {
    const body = parseInput(rolesBody, requestBody(ctx));
    return { user: adminUser(await admin.setRoles(userId, body.roles)) };
  });
  const disableUser = onUser('user.disable', async (ctx, userId) => {
    const { user, sessionsEnded } = await admin.disableUser(ctx.state.admin, userId);
    return { user: adminUser(user), sessions_ended: sessionsEnded };
  });
  const enableUser = onUser('user.enable', async (_ctx, userId) => ({ user: adminUser(await admin.enableUser(userId)) }));
  const deleteUser = onUser('user.delete', async (ctx, userId) => {
    const { sessionsEnded } = await admin.deleteUser(ctx.state.admin, userId);
    return { deleted: true, sessions_ended: sessionsEnded };
  });
  const listSessions = onUser('user.sessions.list', async (_ctx, userId) => ({ sessions: (await admin.listUserSessions(userId)).map(adminSession) }));
  const endSessions = onUser('user.sessions.end_all', async (ctx, userId) => ({ sessions_ended: await admin.endUserSessions(ctx.state.admin, userId) }));
  const endSession = onUser('user.sessions.end', async (ctx, userId) => {
    await admin.endUserSession(ctx.state.admin, userId, param(ctx, 'session_id'));
    return { sessions_ended: 1 };
  });

  const listKeys: Middleware<AdminState> = async function listKeys(ctx) {
    ctx.state.audit = { action: 'keys.list' };
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    ctx.body = {
      keys: (await admin.listKeys()).map((key) => ({
        kid: key.kid,
        alg: key.alg,
        state: key.state,
        created_at: iso(key.createdAt),
        activated_at: iso(key.activatedAt),
        retired_at: iso(key.retiredAt),
      })),
    };
  };

  return {
    requireAdmin,
    openapi,
    createClient,
    listClients,
    showClient,
    updateClient,
    rotateSecret,
    deleteClient,
    createUser,
    listUsers,
    showUser,
    setRoles,
    disableUser,
    enableUser,
    deleteUser,
    listSessions,
    endSessions,
    endSession,
    listKeys,
  };
}
