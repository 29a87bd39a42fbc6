/**
 * The first-party API (`/auth/*`): registration, JSON login with an optional HttpOnly
 * refresh cookie, refresh, logout, sessions and password change. Bearer-protected routes
 * answer per RFC 6750 §3.1.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import { z } from 'zod';
import type { Config } from '../../config.js';
import { AccessDeniedError, InvalidGrantError, InvalidRequestError, InvalidTokenError, NotFoundError, UnauthorizedClientError } from '../../errors.js';
import { requestedAudience, targetParameters } from '../../oauth/grants/target.js';
import type { TokenService } from '../../oauth/token-service.js';
import type { ClientRecord, ClientStore, FamilyStore, GrantType, UserRecord } from '../../stores/types.js';
import type { AccessTokenClaims } from '../../tokens/access-token.js';
import { publicUser, type UserService } from '../../users/service.js';
import { email, loginEmail, newPassword, parseInput, password, text } from '../input.js';
import { requestBody } from './oauth.js';

export interface AuthRouteDeps {
  readonly config: Pick<Config, 'issuer' | 'corsOrigins' | 'loginClientId' | 'refreshTokenTtl'>;
  readonly users: UserService;
  readonly tokens: TokenService;
  readonly families: Pick<FamilyStore, 'get' | 'listBySubject' | 'revoke' | 'revokeAll' | 'verifiedFamilyId'>;
  readonly clients: Pick<ClientStore, 'findById'>;
}

type AuthState = { claims: AccessTokenClaims; user: UserRecord };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Context = ParameterizedContext<any>;

export const REFRESH_COOKIE = 'refresh_token';
const COOKIE_PATH = '/auth';

const registerBody = z.object({ email, password: newPassword, name: text(100).optional() });
const loginBody = z.object({ email: loginEmail, password, client_id: text(128).optional(), scope: text(1000).optional() });
const refreshBody = z.object({ refresh_token: text(512).optional(), scope: text(1000).optional(), ...targetParameters });
const passwordBody = z.object({ current_password: password, new_password: newPassword });

export function createAuthRoutes(deps: AuthRouteDeps) {
  const { config, users, tokens, families, clients } = deps;
  const secureCookie = config.issuer.startsWith('https:');
  const trustedOrigins = new Set([new URL(config.issuer).origin, ...config.corsOrigins]);

  /** `HttpOnly; SameSite=Strict; Path=/auth`, and `Secure` whenever the issuer is https. */
  function setRefreshCookie(ctx: Context, value: string, maxAgeSec: number): void {
    const attributes = [`Path=${COOKIE_PATH}`, 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSec}`, ...(secureCookie ? ['Secure'] : [])];
    ctx.append('Set-Cookie', `${REFRESH_COOKIE}=${value}; ${attributes.join('; ')}`);
  }

  /**
   * CSRF defence for cookie-authenticated requests: the browser sends the cookie on its
   * own, so the request must come from a page of ours (`Origin` in CORS_ORIGINS or the
   * issuer's own origin). SameSite=Strict is the first line; this is the second.
   */
  function assertTrustedOrigin(ctx: Context): void {
    const origin = ctx.get('Origin');
    if (!trustedOrigins.has(origin)) throw new AccessDeniedError('a cookie-authenticated request must come from an allowed Origin');
  }

  /**
   * The refresh cookie. Two of them mean one was set by someone else: a sibling subdomain
   * can plant `refresh_token` for the parent domain on a longer path, which the browser
   * sends first, and would sign the victim into the attacker's session. Refused.
   */
  function readCookie(ctx: Context): string | undefined {
    const values = refreshCookies(ctx);
    if (values.length > 1) throw new InvalidRequestError(`the request carries ${values.length} ${REFRESH_COOKIE} cookies; only one may be ours`);
    return values[0] || undefined;
  }

  function refreshCookies(ctx: Context): string[] {
    return ctx
      .get('Cookie')
      .split(';')
      .map((part) => part.trim().split('='))
      .filter(([name]) => name === REFRESH_COOKIE)
      .map(([, ...rest]) => rest.join('='));
  }

  /** The first-party public client, which must also hold `grant` (as at /oauth/token). */
  async function loginClient(clientId: string, grant: GrantType): Promise<ClientRecord> {
    const client = await clients.findById(clientId);
    // Only public first-party apps log in here; confidential ones authenticate at /oauth/token.
    if (!client || !client.firstParty || client.type !== 'public') {
      throw new InvalidRequestError('client_id does not name a first-party public client');
    }
    if (!client.grantTypes.includes(grant)) throw new UnauthorizedClientError(`this client may not use the ${grant} grant`);
    return client;
  }

  const requireUser: Middleware<AuthState> = async function requireUser(ctx, next) {
    const claims = await tokens.authenticateBearer(ctx.req.headersDistinct.authorization);
    // A client's own token (client_credentials) has sub = client_id and no email: never a user's.
    if (claims.email === undefined || claims.sub === claims.client_id) throw new InvalidTokenError('this endpoint needs a user access token');
    const user = await users.findById(claims.sub);
    if (!user || user.disabled) throw new InvalidTokenError('the access token does not belong to an active user');
    ctx.state.claims = claims;
    ctx.state.user = user;
    await next();
  };

  const register: Middleware = async function register(ctx) {
    const body = parseInput(registerBody, requestBody(ctx));
    const user = await users.register({ ...body, ip: ctx.ip });
    ctx.status = 201;
    ctx.body = { user: publicUser(user) };
  };

  const login: Middleware = async function login(ctx) {
    const body = parseInput(loginBody, requestBody(ctx), (description) => new InvalidRequestError(description));
    const client = await loginClient(body.client_id ?? config.loginClientId, 'password');
    const cookieMode = ctx.query.cookie === '1' || client.cookieMode;
    // Login CSRF: a foreign page could otherwise sign the browser into the attacker's account.
    if (cookieMode) assertTrustedOrigin(ctx);
    const user = await users.login({ email: body.email, password: body.password, ip: ctx.ip });
    const issued = await tokens.issueForUser({ user, client, scope: body.scope, context: { ip: ctx.ip, userAgent: ctx.get('User-Agent') || undefined } });
    ctx.set('Cache-Control', 'no-store');
    const { refresh_token: refreshToken, ...rest } = issued.response;
    if (refreshToken && cookieMode) {
      setRefreshCookie(ctx, refreshToken, config.refreshTokenTtl);
      ctx.body = { ...rest, user: publicUser(user) };
    } else {
      ctx.body = { ...issued.response, user: publicUser(user) };
    }
  };

  const refresh: Middleware = async function refresh(ctx) {
    const body = parseInput(refreshBody, requestBody(ctx));
    const fromCookie = body.refresh_token === undefined;
    const refreshToken = body.refresh_token ?? readCookie(ctx);
    if (!refreshToken) throw new InvalidRequestError('refresh_token is required (in the body or the cookie)');
    if (fromCookie) assertTrustedOrigin(ctx);
    const familyId = families.verifiedFamilyId(refreshToken);
    const family = familyId ? await families.get(familyId) : null;
    if (!family) throw new InvalidGrantError('the refresh token is invalid, expired or revoked');
    const client = await loginClient(family.clientId, 'refresh_token');
    const refreshed = await tokens.refresh({ refreshToken, client, family, scope: body.scope, audience: requestedAudience(body), context: { ip: ctx.ip, userAgent: ctx.get('User-Agent') || undefined } });
    ctx.set('Cache-Control', 'no-store');
    const { refresh_token: next, ...rest } = refreshed.response;
    if (fromCookie && next) {
      setRefreshCookie(ctx, next, config.refreshTokenTtl);
      ctx.body = rest;
    } else {
      ctx.body = refreshed.response;
    }
  };

  const logout: Middleware<AuthState> = async function logout(ctx) {
    // Any cookie at all means a browser may have sent this on its own. A planted second
    // cookie must not stop the logout itself: the session is the Bearer token's, not the cookie's.
    if (refreshCookies(ctx).length > 0) assertTrustedOrigin(ctx);
    const { claims } = ctx.state;
    await Promise.all([claims.sid ? families.revoke(claims.sid) : undefined, tokens.denyAccessToken(claims)]);
    setRefreshCookie(ctx, '', 0);
    ctx.status = 204;
  };

  const logoutAll: Middleware<AuthState> = async function logoutAll(ctx) {
    const { claims } = ctx.state;
    const ended = await families.revokeAll(claims.sub);
    await tokens.denyAccessToken(claims);
    setRefreshCookie(ctx, '', 0);
    ctx.body = { sessions_ended: ended };
  };

  const me: Middleware<AuthState> = function me(ctx) {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { user: publicUser(ctx.state.user) };
  };

  const changePassword: Middleware<AuthState> = async function changePassword(ctx) {
    const body = parseInput(passwordBody, requestBody(ctx));
    const { claims, user } = ctx.state;
    await users.changePassword({ user, currentPassword: body.current_password, newPassword: body.new_password, ip: ctx.ip, session: claims.sid ?? claims.jti });
    const ended = await families.revokeAll(user.id, claims.sid);
    ctx.body = { sessions_ended: ended };
  };

  const listSessions: Middleware<AuthState> = async function listSessions(ctx) {
    const { claims } = ctx.state;
    const sessions = await families.listBySubject(claims.sub);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      sessions: sessions.map((family) => ({
        id: family.id,
        created_at: new Date(family.createdAt).toISOString(),
        last_used_at: new Date(family.lastUsedAt).toISOString(),
        client_id: family.clientId,
        user_agent: family.userAgent ?? null,
        current: family.id === claims.sid,
      })),
    };
  };

  const endSession: Middleware<AuthState> = async function endSession(ctx) {
    const id = (ctx as unknown as { params: Record<string, string | undefined> }).params.id ?? '';
    const family = await families.get(id);
    // Someone else's session id answers exactly like one that does not exist.
    if (!family || family.subject !== ctx.state.user.id) throw new NotFoundError('no such session');
    await families.revoke(family.id);
    ctx.status = 204;
  };

  return { requireUser, register, login, refresh, logout, logoutAll, me, changePassword, listSessions, endSession };
}
