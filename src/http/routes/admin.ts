/**
 * The admin API (`/admin/*`, issue 22): Bearer tokens with the `admin` scope, checked by the
 * admin service; each handler parses, calls it and answers. Every call is audited in the
 * log with the acting client, the action and its target, never a secret.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import { z } from 'zod';
import { publicClient, type AdminCaller, type AdminService } from '../../admin/service.js';
import type { Logger } from '../../log.js';
import { parseInput, text } from '../../input.js';
import { publicUser } from '../../users/service.js';
import { requestBody } from '../request.js';

type AdminState = { admin: AdminCaller; audit?: { action: string; target?: string } };
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
});

const newUserBody = z.object({ email: text(254), password: text(1024), roles: list(64), name: text(100).optional() });

const param = (ctx: Context, name: string): string => (ctx as unknown as { params: Record<string, string | undefined> }).params[name] ?? '';

export function createAdminRoutes(deps: { admin: AdminService; logger: Logger }) {
  const { admin, logger } = deps;

  /** Authenticates the caller, then logs the outcome of what the handler named as its action. */
  const requireAdmin: Middleware<AdminState> = async function requireAdmin(ctx, next) {
    ctx.state.admin = await admin.authenticate(ctx.req.headersDistinct.authorization);
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
      logger.info({ audit: { actor: ctx.state.admin.clientId, ...ctx.state.audit, outcome: 'ok', status: ctx.status } }, 'admin action');
    } catch (err) {
      logger.info({ audit: { actor: ctx.state.admin.clientId, ...ctx.state.audit, outcome: 'refused' } }, 'admin action');
      throw err;
    }
  };

  const createClient: Middleware<AdminState> = async function createClient(ctx) {
    ctx.state.audit = { action: 'client.create' };
    const body = parseInput(newClientBody, requestBody(ctx));
    const { client, clientSecret } = await admin.createClient({
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
    });
    ctx.state.audit = { action: 'client.create', target: client.clientId };
    ctx.status = 201;
    ctx.body = { client: publicClient(client), ...(clientSecret !== undefined && { client_secret: clientSecret }) };
  };

  const createUser: Middleware<AdminState> = async function createUser(ctx) {
    ctx.state.audit = { action: 'user.create' };
    const body = parseInput(newUserBody, requestBody(ctx));
    const user = await admin.createUser({ email: body.email, password: body.password, roles: body.roles, name: body.name });
    ctx.state.audit = { action: 'user.create', target: user.id };
    ctx.status = 201;
    ctx.body = { user: publicUser(user) };
  };

  const showClient: Middleware<AdminState> = async function showClient(ctx) {
    const clientId = param(ctx as Context, 'client_id');
    ctx.state.audit = { action: 'client.show', target: clientId };
    ctx.body = { client: publicClient(await admin.showClient(clientId)) };
  };

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

  return { requireAdmin, createClient, createUser, showClient, listKeys };
}
