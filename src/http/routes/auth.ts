/**
 * The first-party API (`/auth/*`): registration, JSON login with an optional HttpOnly
 * refresh cookie, refresh, logout, sessions and password change. Each handler parses,
 * calls the session or user service, and answers; the refresh cookie and the Origin check
 * that guards it are the only rules here, because they are HTTP's. Bearer-protected routes
 * answer per RFC 6750 §3.1.
 */
import type { Middleware, ParameterizedContext } from 'koa';
import { z } from 'zod';
import type { Config } from '../../config.js';
import { AccessDeniedError, InvalidRequestError } from '../../errors.js';
import { email, loginEmail, newPassword, parseInput, password, text } from '../../input.js';
import { requestedAudience, targetParameters } from '../../oauth/grants/target.js';
import type { Caller, SessionService } from '../../sessions/service.js';
import { publicUser, type UserService } from '../../users/service.js';
import type { AccountRecovery } from '../../users/recovery.js';
import { requestBody, useContext } from '../request.js';

export interface AuthRouteDeps {
  readonly config: Pick<Config, 'issuer' | 'corsOrigins' | 'refreshTokenTtl'>;
  readonly users: Pick<UserService, 'register'>;
  readonly sessions: SessionService;
  /** Mails at registration (verify the address) and after a password change (a notice). */
  readonly recovery: Pick<AccountRecovery, 'welcome' | 'passwordChanged'>;
}

type AuthState = { -readonly [K in keyof Caller]: Caller[K] };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Context = ParameterizedContext<any>;

export const REFRESH_COOKIE = 'refresh_token';
/**
 * On https the cookie is `__Host-refresh_token` with `Path=/`: browsers accept that name only
 * from this host, Secure and without a Domain, so a sibling subdomain cannot plant (toss) one.
 */
export const HOST_REFRESH_COOKIE = `__Host-${REFRESH_COOKIE}`;

const registerBody = z.object({ email, password: newPassword, name: text(100).optional() });
const loginBody = z.object({ email: loginEmail, password, client_id: text(128).optional(), scope: text(1000).optional() });
const refreshBody = z.object({ refresh_token: text(512).optional(), scope: text(1000).optional(), ...targetParameters });
const passwordBody = z.object({ current_password: password, new_password: newPassword });

export function createAuthRoutes(deps: AuthRouteDeps) {
  const { config, users, sessions } = deps;
  const cookies = refreshCookie(config);

  const requireUser: Middleware<AuthState> = async function requireUser(ctx, next) {
    const caller = await sessions.authenticate(ctx.req.headersDistinct.authorization);
    ctx.state.claims = caller.claims;
    ctx.state.user = caller.user;
    await next();
  };

  const register: Middleware = async function register(ctx) {
    const body = parseInput(registerBody, requestBody(ctx));
    const user = await users.register({ ...body, ip: ctx.ip });
    deps.recovery.welcome(user);
    ctx.status = 201;
    ctx.body = { user: publicUser(user) };
  };

  const login: Middleware = async function login(ctx) {
    const body = parseInput(loginBody, requestBody(ctx));
    const client = await sessions.firstPartyClient(body.client_id, 'password');
    const cookieMode = ctx.query.cookie === '1' || client.cookieMode;
    // Login CSRF: a foreign page could otherwise sign the browser into the attacker's account.
    if (cookieMode) cookies.assertTrustedOrigin(ctx);
    const { user, response } = await sessions.login({ client, email: body.email, password: body.password, scope: body.scope, context: useContext(ctx) });
    ctx.set('Cache-Control', 'no-store');
    const { refresh_token: refreshToken, ...rest } = response;
    if (refreshToken && cookieMode) {
      cookies.set(ctx, refreshToken);
      ctx.body = { ...rest, user: publicUser(user) };
    } else {
      ctx.body = { ...response, user: publicUser(user) };
    }
  };

  const refresh: Middleware = async function refresh(ctx) {
    const body = parseInput(refreshBody, requestBody(ctx));
    const fromCookie = body.refresh_token === undefined;
    const refreshToken = body.refresh_token ?? cookies.read(ctx);
    if (!refreshToken) throw new InvalidRequestError('refresh_token is required (in the body or the cookie)');
    if (fromCookie) cookies.assertTrustedOrigin(ctx);
    const response = await sessions.refresh({ refreshToken, scope: body.scope, audience: requestedAudience(body), context: useContext(ctx) });
    ctx.set('Cache-Control', 'no-store');
    const { refresh_token: next, ...rest } = response;
    if (fromCookie && next) {
      cookies.set(ctx, next);
      ctx.body = rest;
    } else {
      ctx.body = response;
    }
  };

  const logout: Middleware<AuthState> = async function logout(ctx) {
    // Any cookie at all means a browser may have sent this on its own. A planted second
    // cookie must not stop the logout itself: the session is the Bearer token's, not the cookie's.
    if (cookies.all(ctx).length > 0) cookies.assertTrustedOrigin(ctx);
    await sessions.logout(ctx.state);
    cookies.clear(ctx);
    ctx.status = 204;
  };

  const logoutAll: Middleware<AuthState> = async function logoutAll(ctx) {
    const ended = await sessions.logoutAll(ctx.state);
    cookies.clear(ctx);
    ctx.body = { sessions_ended: ended };
  };

  const me: Middleware<AuthState> = function me(ctx) {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { user: publicUser(ctx.state.user) };
  };

  const changePassword: Middleware<AuthState> = async function changePassword(ctx) {
    const body = parseInput(passwordBody, requestBody(ctx));
    const ended = await sessions.changePassword(ctx.state, { currentPassword: body.current_password, newPassword: body.new_password, ip: ctx.ip });
    deps.recovery.passwordChanged(ctx.state.user);
    ctx.body = { sessions_ended: ended };
  };

  const listSessions: Middleware<AuthState> = async function listSessions(ctx) {
    const [sessionList, browsers] = await Promise.all([sessions.list(ctx.state), sessions.listBrowserSessions(ctx.state)]);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      sessions: sessionList.map((session) => ({
        id: session.id,
        created_at: new Date(session.createdAt).toISOString(),
        last_used_at: new Date(session.lastUsedAt).toISOString(),
        client_id: session.clientId,
        user_agent: session.userAgent ?? null,
        current: session.current,
      })),
      // Browsers signed in at the authority itself (the hosted login's SSO).
      browser_sessions: browsers.map((session) => ({
        id: session.id,
        created_at: new Date(session.createdAt).toISOString(),
        last_used_at: new Date(session.lastUsedAt).toISOString(),
        expires_at: new Date(session.expiresAt).toISOString(),
      })),
    };
  };

  const listConsents: Middleware<AuthState> = async function listConsents(ctx) {
    const consents = await sessions.listConsents(ctx.state);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      consents: consents.map((consent) => ({
        client_id: consent.clientId,
        scope: consent.scopes.join(' '),
        created_at: consent.createdAt.toISOString(),
        updated_at: consent.updatedAt.toISOString(),
      })),
    };
  };

  const revokeConsent: Middleware<AuthState> = async function revokeConsent(ctx) {
    const clientId = (ctx as unknown as { params: Record<string, string | undefined> }).params.client_id ?? '';
    await sessions.revokeConsent(ctx.state, clientId);
    ctx.status = 204;
  };

  const endSession: Middleware<AuthState> = async function endSession(ctx) {
    const id = (ctx as unknown as { params: Record<string, string | undefined> }).params.id ?? '';
    await sessions.end(ctx.state, id);
    ctx.status = 204;
  };

  return { requireUser, register, login, refresh, logout, logoutAll, me, changePassword, listSessions, endSession, listConsents, revokeConsent };
}

/** The HttpOnly refresh cookie of cookie mode, and the Origin check that guards it. */
function refreshCookie(config: AuthRouteDeps['config']) {
  const secure = config.issuer.startsWith('https:');
  const name = secure ? HOST_REFRESH_COOKIE : REFRESH_COOKIE;
  const path = secure ? '/' : '/auth';
  const trustedOrigins = new Set([new URL(config.issuer).origin, ...config.corsOrigins]);

  /** `HttpOnly; SameSite=Strict; Path=/auth`, and `Secure` whenever the issuer is https. */
  function write(ctx: Context, value: string, maxAgeSec: number): void {
    const attributes = [`Path=${path}`, 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSec}`, ...(secure ? ['Secure'] : [])];
    ctx.append('Set-Cookie', `${name}=${value}; ${attributes.join('; ')}`);
  }

  function all(ctx: Context): string[] {
    return ctx
      .get('Cookie')
      .split(';')
      .map((part) => part.trim().split('='))
      .filter(([cookie]) => cookie === name)
      .map(([, ...rest]) => rest.join('='));
  }

  return {
    set: (ctx: Context, value: string) => write(ctx, value, config.refreshTokenTtl),
    clear: (ctx: Context) => write(ctx, '', 0),
    all,
    /**
     * Two cookies mean one was set by someone else: a sibling subdomain can plant
     * `refresh_token` for the parent domain on a longer path, which the browser sends
     * first, and would sign the victim into the attacker's session. Refused.
     */
    read(ctx: Context): string | undefined {
      const values = all(ctx);
      if (values.length > 1) throw new InvalidRequestError(`the request carries ${values.length} ${name} cookies; only one may be ours`);
      return values[0] || undefined;
    },
    /**
     * CSRF defence for cookie-authenticated requests: the browser sends the cookie on its
     * own, so the request must come from a page of ours (`Origin` in CORS_ORIGINS or the
     * issuer's own origin). SameSite=Strict is the first line; this is the second.
     */
    assertTrustedOrigin(ctx: Context): void {
      if (!trustedOrigins.has(ctx.get('Origin'))) throw new AccessDeniedError('a cookie-authenticated request must come from an allowed Origin');
    },
  };
}
