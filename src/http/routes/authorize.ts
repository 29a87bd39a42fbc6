/**
 * The browser endpoints of the authorization code flow: /oauth/authorize (GET and POST),
 * the hosted login and consent forms, and /oauth/par. Each parses, calls the sign-in
 * service, and answers with a redirect or a page; a failure on a page is a page too
 * (the JSON error format is for APIs).
 */
import type { Context, Middleware } from 'koa';
import { toOAuthError, StoreUnavailableError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Logout, LogoutOutcome } from '../../oauth/logout.js';
import type { SignIn, SignInOutcome } from '../../oauth/sign-in.js';
import { pageHeaders, type PageAssets, type PageRenderer } from '../../pages/index.js';
import type { Random } from '../../random.js';
import { parseForm } from '../middleware/body.js';
import { requestBody } from '../request.js';

export interface AuthorizeRouteDeps {
  readonly signIn: SignIn;
  readonly logout: Logout;
  readonly pages: PageRenderer;
  readonly random: Random;
  readonly logger: Logger;
  /** Cookies get `Secure` and the `__Host-` prefix. */
  readonly https: boolean;
  readonly assets: PageAssets;
}

export const LOGIN_PATH = '/oauth/authorize/login';
export const CONSENT_PATH = '/oauth/authorize/consent';
export const LOGOUT_PATH = '/oauth/logout';
export const LOGOUT_CONFIRM_PATH = '/oauth/logout/confirm';
const MAX_QUERY_PARAMETERS = 50;

export function createAuthorizeRoutes(deps: AuthorizeRouteDeps) {
  const { signIn, pages } = deps;
  const prefix = deps.https ? '__Host-' : '';
  const BINDING_COOKIE = `${prefix}authz`;
  const SESSION_COOKIE = `${prefix}session`;
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Lax', ...(deps.https ? ['Secure'] : [])].join('; ');

  /** The browser: its transaction binding (made on first sight), its sign-in session, its address. */
  function browser(ctx: Context, { create }: { create: boolean }) {
    let binding = readCookie(ctx, BINDING_COOKIE) ?? '';
    if (!binding && create) {
      binding = deps.random.token(32);
      ctx.append('Set-Cookie', `${BINDING_COOKIE}=${binding}; ${attributes}`);
    }
    return { binding, sessionCookie: readCookie(ctx, SESSION_COOKIE), ip: ctx.ip };
  }

  /** 303 after a form post, so the browser follows with a GET (RFC 9700 §4.12); else 302. */
  function redirect(ctx: Context, location: string): void {
    ctx.set('Location', location);
    ctx.status = ctx.method === 'POST' ? 303 : 302;
    ctx.body = '';
  }

  function answer(ctx: Context, outcome: SignInOutcome): void {
    if ('sessionCookie' in outcome && outcome.sessionCookie) ctx.append('Set-Cookie', `${SESSION_COOKIE}=${outcome.sessionCookie}; ${attributes}`);
    ctx.set('Cache-Control', 'no-store');
    switch (outcome.kind) {
      case 'redirect':
        redirect(ctx, outcome.location);
        return;
      case 'login':
        page(
          ctx,
          outcome.status,
          [outcome.redirectOrigin],
          pages.login({
            action: LOGIN_PATH,
            csrfToken: outcome.transaction,
            clientName: outcome.client.name,
            email: outcome.email,
            ...(outcome.error !== undefined && { error: { message: outcome.error } }),
            ...(outcome.retryAfterMs !== undefined && { throttle: { retryAfterMs: outcome.retryAfterMs } }),
          }),
        );
        if (outcome.retryAfterMs !== undefined) ctx.set('Retry-After', String(Math.ceil(outcome.retryAfterMs / 1000)));
        return;
      case 'consent':
        page(
          ctx,
          200,
          [outcome.redirectOrigin],
          pages.consent({
            action: CONSENT_PATH,
            csrfToken: outcome.transaction,
            clientName: outcome.client.name,
            scopes: outcome.scopes,
            userEmail: outcome.user.email,
          }),
        );
        return;
      case 'error':
        page(ctx, outcome.status, [], pages.error({ title: 'This sign-in cannot continue', description: outcome.description }));
        return;
    }
  }

  function answerLogout(ctx: Context, outcome: LogoutOutcome): void {
    if ('clearSession' in outcome && outcome.clearSession) ctx.append('Set-Cookie', `${SESSION_COOKIE}=; ${attributes}; Max-Age=0`);
    ctx.set('Cache-Control', 'no-store');
    switch (outcome.kind) {
      case 'redirect':
        redirect(ctx, outcome.location);
        return;
      case 'confirm':
        page(
          ctx,
          200,
          outcome.redirectOrigin ? [outcome.redirectOrigin] : [],
          pages.logout({ action: LOGOUT_CONFIRM_PATH, csrfToken: outcome.transaction, clientName: outcome.clientName }),
        );
        return;
      case 'done':
        page(
          ctx,
          200,
          [],
          outcome.signedOut
            ? pages.notice({ title: 'Signed out', message: 'You have signed out.' })
            : pages.notice({ title: 'Still signed in', message: 'You are still signed in.' }),
        );
        return;
      case 'error':
        page(ctx, outcome.status, [], pages.error({ title: 'This sign-out cannot continue', description: outcome.description }));
        return;
    }
  }

  /** Any failure on a hosted page becomes an accessible page; 5xx causes are logged, never shown. */
  const pageErrors: Middleware = async function pageErrors(ctx, next) {
    try {
      await next();
    } catch (thrown) {
      const err =
        thrown instanceof StoreUnavailableError
          ? { status: 503, code: 'temporarily_unavailable', description: 'The service is briefly unavailable. Please try again in a moment.' }
          : toOAuthError(thrown);
      if (err.status >= 500) deps.logger.error({ reqId: ctx.state.requestId, err: thrown, code: err.code }, 'request failed');
      const description = err.status >= 500 ? 'Something went wrong on our side. Please try again in a moment.' : err.description;
      page(ctx, err.status, [], pages.error({ title: 'This sign-in cannot continue', description }));
    }
  };

  const formField = (body: Record<string, unknown>, name: string) => (typeof body[name] === 'string' ? (body[name] as string) : '');

  return {
    pageErrors,
    authorize: async function authorize(ctx: Context) {
      const params = ctx.method === 'POST' ? requestBody(ctx) : parseForm(ctx.querystring, MAX_QUERY_PARAMETERS);
      answer(ctx, await signIn.authorize(params, browser(ctx, { create: true })));
    } satisfies Middleware,

    login: async function login(ctx: Context) {
      const body = requestBody(ctx);
      answer(
        ctx,
        await signIn.login(
          { transaction: formField(body, 'csrf'), email: formField(body, 'email'), password: formField(body, 'password') },
          browser(ctx, { create: false }),
        ),
      );
    } satisfies Middleware,

    consent: async function consent(ctx: Context) {
      const body = requestBody(ctx);
      answer(ctx, await signIn.consent({ transaction: formField(body, 'csrf'), decision: formField(body, 'decision') }, browser(ctx, { create: false })));
    } satisfies Middleware,

    /** RP-Initiated Logout §2 (GET or POST). */
    logout: async function logout(ctx: Context) {
      const params = ctx.method === 'POST' ? requestBody(ctx) : parseForm(ctx.querystring, MAX_QUERY_PARAMETERS);
      const { binding, sessionCookie } = browser(ctx, { create: true });
      answerLogout(ctx, await deps.logout.request(params, { binding, sessionCookie }));
    } satisfies Middleware,

    logoutConfirm: async function logoutConfirm(ctx: Context) {
      const body = requestBody(ctx);
      const { binding, sessionCookie } = browser(ctx, { create: false });
      answerLogout(ctx, await deps.logout.confirm({ transaction: formField(body, 'csrf'), decision: formField(body, 'decision') }, { binding, sessionCookie }));
    } satisfies Middleware,

    /** RFC 9126 §2.2: 201 with the request_uri. */
    par: async function par(ctx: Context) {
      ctx.status = 201;
      ctx.body = await signIn.push(ctx.state.client, requestBody(ctx));
    } satisfies Middleware,

    stylesheet: asset(deps.assets.stylesheet, 'text/css; charset=utf-8'),
    logo: deps.assets.logo ? asset(deps.assets.logo.body, deps.assets.logo.type) : undefined,
  };
}

function page(ctx: Context, status: number, formActionOrigins: readonly string[], html: string): void {
  ctx.status = status;
  ctx.set(pageHeaders(formActionOrigins));
  ctx.body = html;
}

function readCookie(ctx: Context, name: string): string | undefined {
  for (const part of ctx.get('Cookie').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=') || undefined;
  }
  return undefined;
}

function asset(body: string | Buffer, type: string): Middleware {
  return function serveAsset(ctx) {
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.type = type;
    ctx.body = body;
  };
}
