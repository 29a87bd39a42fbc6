/**
 * The Koa application, built from services that already exist: no globals, no config
 * reads, nothing started. `src/server.ts` builds the dependencies and owns the process.
 */
import Router from '@koa/router';
import Koa from 'koa';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { MethodNotAllowedError, NotFoundError } from '../errors.js';
import type { KeyRingSource } from '../keys/source.js';
import type { Logger } from '../log.js';
import type { ClientAuthenticator } from '../oauth/client-auth.js';
import { GRANT_TYPES } from '../oauth/grants/index.js';
import type { TokenService } from '../oauth/token-service.js';
import type { Random } from '../random.js';
import type { SessionService } from '../sessions/service.js';
import type { AuthorizationCodes } from '../oauth/authorization-codes.js';
import type { Logout } from '../oauth/logout.js';
import type { SignIn } from '../oauth/sign-in.js';
import type { IdTokens } from '../tokens/id-token.js';
import { PAGES_LOGO_PATH, PAGES_STYLESHEET_PATH, type PageAssets, type PageRenderer } from '../pages/index.js';
import { CONSENT_PATH, createAuthorizeRoutes, LOGIN_PATH, LOGOUT_CONFIRM_PATH, LOGOUT_PATH } from './routes/authorize.js';
import type { UserService } from '../users/service.js';
import type { DevMail } from '../mail/transport.js';
import type { AccountRecovery } from '../users/recovery.js';
import { createAccountRoutes } from './routes/account.js';
import { ACCOUNT_PAGE_PATHS, createAccountPages } from './routes/account-pages.js';
import { createFormTokens } from './form-tokens.js';
import { parseBody } from './middleware/body.js';
import { errorResponses } from './middleware/errors.js';
import { requestLog } from './middleware/request-log.js';
import { requestScope } from './middleware/request-scope.js';
import { httpMetrics, tokenMetrics, type HttpMetrics } from './middleware/metrics.js';
import { corsPolicy, publicDocumentHeaders, securityHeaders } from './middleware/security.js';
import { createAdminRoutes } from './routes/admin.js';
import type { AdminService } from '../admin/service.js';
import { createAuthRoutes } from './routes/auth.js';
import { liveness, readiness, type ReadinessCheck } from './routes/health.js';
import { authenticateClient, exchangeGrant, introspectToken, noStore, revokeToken } from './routes/oauth.js';
import { jwksRoute, metadataRoute, openidConfigurationDocument, publicDocuments } from './routes/well-known.js';
import { createOpenIdRoutes } from './routes/openid.js';

export interface AppDeps {
  readonly config: Pick<Config, 'bodyLimit' | 'corsOrigins' | 'issuer' | 'jwksMaxAge' | 'refreshTokenTtl' | 'trustProxyHops' | 'signIn'>;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random: Random;
  readonly readiness: readonly ReadinessCheck[];
  readonly keys: Pick<KeyRingSource, 'current'>;
  readonly tokens: TokenService;
  readonly users: UserService;
  readonly clientAuth: ClientAuthenticator;
  readonly sessions: SessionService;
  readonly codes: AuthorizationCodes;
  readonly idTokens: IdTokens;
  readonly signIn: SignIn;
  readonly logout: Logout;
  readonly pages: PageRenderer;
  readonly pageAssets: PageAssets;
  /** The admin API (`/admin/*`); absent, no admin routes. */
  readonly admin?: AdminService;
  /** `scopes_supported` of the metadata. */
  readonly scopes?: readonly string[];
  /** Each request runs inside it, so that security events name the request that caused them. */
  readonly requestScope?: Parameters<typeof requestScope>[0];
  /** Dev mode without SMTP_URL: the last mails, served at GET /dev/mail; never set in production. */
  readonly devMail?: (() => readonly DevMail[]) | undefined;
  /** The mailed-link flows (verification, reset, email change), their API and hosted pages. */
  readonly recovery: AccountRecovery;
  /** Key of the account pages' CSRF tokens; the same on every instance. */
  readonly formKey: Buffer;
  /** Prometheus metrics (src/metrics/); none when absent. */
  readonly metrics?: HttpMetrics;
}

export function createApp(deps: AppDeps): Koa {
  // ctx.ip keys every rate limit: trust X-Forwarded-For only as far as our own proxies.
  const hops = deps.config.trustProxyHops;
  const app = new Koa({ proxy: hops > 0, maxIpsCount: hops });
  app.silent = true;

  const oauth = { tokens: deps.tokens, users: deps.users, clientAuth: deps.clientAuth, codes: deps.codes, idTokens: deps.idTokens, clock: deps.clock };
  const client = authenticateClient(oauth);
  const auth = createAuthRoutes(deps);
  const browser = createAuthorizeRoutes({
    signIn: deps.signIn,
    logout: deps.logout,
    pages: deps.pages,
    random: deps.random,
    logger: deps.logger,
    https: deps.config.issuer.startsWith('https:'),
    assets: deps.pageAssets,
  });

  const openid = createOpenIdRoutes({ sessions: deps.sessions });

  const router = new Router();
  router.get('/healthz', liveness());
  router.get('/readyz', readiness(deps.readiness));
  const https = deps.config.issuer.startsWith('https:');
  const publicHeaders = publicDocumentHeaders({ https });
  const metadata = {
    issuer: deps.config.issuer,
    keys: deps.keys,
    scopes: deps.scopes ?? [],
    grantTypes: GRANT_TYPES,
    requirePar: deps.config.signIn.requirePar,
    maxAgeSec: deps.config.jwksMaxAge,
    // RFC 7009 §2.1: public clients revoke their own tokens with client_id alone.
    revocationAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    fixedHeaders: publicHeaders,
  };
  const documents = new Map([
    ['/.well-known/jwks.json', jwksRoute(deps.keys, deps.config.jwksMaxAge, publicHeaders)],
    ['/.well-known/oauth-authorization-server', metadataRoute(metadata)],
    ['/.well-known/openid-configuration', metadataRoute(metadata, openidConfigurationDocument)],
  ]);
  for (const [path, route] of documents) router.get(path, route);
  router.get('/oauth/authorize', browser.pageErrors, browser.authorize);
  router.post('/oauth/authorize', browser.pageErrors, browser.authorize);
  router.post(LOGIN_PATH, browser.pageErrors, browser.login);
  router.post(CONSENT_PATH, browser.pageErrors, browser.consent);
  router.get(LOGOUT_PATH, browser.pageErrors, browser.logout);
  router.post(LOGOUT_PATH, browser.pageErrors, browser.logout);
  router.post(LOGOUT_CONFIRM_PATH, browser.pageErrors, browser.logoutConfirm);
  router.get(PAGES_STYLESHEET_PATH, browser.stylesheet);
  if (browser.logo) router.get(PAGES_LOGO_PATH, browser.logo);
  router.post('/oauth/par', noStore, client, browser.par);
  const countTokens = (grant?: string) => (deps.metrics ? [tokenMetrics(deps.metrics, grant)] : []);
  router.post('/oauth/token', noStore, ...countTokens(), client, exchangeGrant(oauth));
  router.post('/oauth/revoke', noStore, client, revokeToken(oauth));
  router.post('/oauth/introspect', noStore, client, introspectToken(oauth));
  router.get('/oauth/userinfo', noStore, openid.userinfo);
  router.post('/oauth/userinfo', noStore, openid.userinfo);
  router.post('/auth/register', auth.register);
  router.post('/auth/login', ...countTokens('password'), auth.login);
  router.post('/auth/refresh', ...countTokens('refresh_token'), auth.refresh);
  router.post('/auth/logout', auth.requireUser, auth.logout);
  router.post('/auth/logout-all', auth.requireUser, auth.logoutAll);
  router.get('/auth/me', auth.requireUser, auth.me);
  router.post('/auth/password', auth.requireUser, auth.changePassword);
  router.get('/auth/sessions', auth.requireUser, auth.listSessions);
  router.delete('/auth/sessions/:id', auth.requireUser, auth.endSession);
  router.get('/auth/consents', auth.requireUser, auth.listConsents);
  router.delete('/auth/consents/:client_id', auth.requireUser, auth.revokeConsent);
  if (deps.devMail) router.get('/dev/mail', devMailRoute(deps.devMail));
  const account = createAccountRoutes({ recovery: deps.recovery });
  router.post('/auth/email/verify/resend', account.resendVerification);
  router.post('/auth/email/verify', account.verifyEmail);
  router.post('/auth/email', auth.requireUser, account.requestEmailChange);
  router.post('/auth/email/confirm', account.confirmEmailChange);
  router.post('/auth/password/forgot', account.forgotPassword);
  router.post('/auth/password/reset', account.resetPassword);
  const accountPages = createAccountPages({
    recovery: deps.recovery,
    pages: deps.pages,
    forms: createFormTokens({ key: deps.formKey, clock: deps.clock, ttlMs: 60 * 60_000 }),
    random: deps.random,
    logger: deps.logger,
    https,
  });
  router.get(ACCOUNT_PAGE_PATHS.forgotPassword, accountPages.pageErrors, accountPages.forgotPassword);
  router.post(ACCOUNT_PAGE_PATHS.forgotPassword, accountPages.pageErrors, accountPages.submitForgotPassword);
  router.get(ACCOUNT_PAGE_PATHS.resetPassword, accountPages.pageErrors, accountPages.resetPassword);
  router.post(ACCOUNT_PAGE_PATHS.resetPassword, accountPages.pageErrors, accountPages.submitResetPassword);
  router.get(ACCOUNT_PAGE_PATHS.verifyEmail, accountPages.pageErrors, accountPages.verifyEmail.show);
  router.post(ACCOUNT_PAGE_PATHS.verifyEmail, accountPages.pageErrors, accountPages.verifyEmail.submit);
  router.get(ACCOUNT_PAGE_PATHS.confirmEmail, accountPages.pageErrors, accountPages.confirmEmail.show);
  router.post(ACCOUNT_PAGE_PATHS.confirmEmail, accountPages.pageErrors, accountPages.confirmEmail.submit);
  if (deps.admin) mountAdminRoutes(router, createAdminRoutes({ admin: deps.admin, logger: deps.logger }));

  app.use(requestLog(deps));
  if (deps.requestScope) app.use(requestScope(deps.requestScope));
  if (deps.metrics) app.use(httpMetrics(deps.metrics));
  app.use(errorResponses(deps));
  // Ahead of the rest of the chain (they need no body, client or CORS decision), but not
  // of the error handler: a failure in them is answered in the one JSON format too.
  app.use(publicDocuments(documents));
  app.use(securityHeaders({ https }));
  app.use(corsPolicy({ origins: deps.config.corsOrigins }));
  app.use(parseBody({ limit: deps.config.bodyLimit }));
  app.use(routeMisses);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** The admin API's route table (issue 22); the OpenAPI document (admin/openapi.ts) lists exactly these, as its test checks. */
function mountAdminRoutes(router: Router, admin: ReturnType<typeof createAdminRoutes>): void {
  const guarded = [noStore, admin.requireAdmin];
  router.get('/admin/openapi.json', admin.openapi);
  router.get('/admin/clients', ...guarded, admin.listClients);
  router.post('/admin/clients', ...guarded, admin.createClient);
  router.get('/admin/clients/:client_id', ...guarded, admin.showClient);
  router.patch('/admin/clients/:client_id', ...guarded, admin.updateClient);
  router.delete('/admin/clients/:client_id', ...guarded, admin.deleteClient);
  router.post('/admin/clients/:client_id/secret', ...guarded, admin.rotateSecret);
  router.get('/admin/users', ...guarded, admin.listUsers);
  router.post('/admin/users', ...guarded, admin.createUser);
  router.get('/admin/users/:user_id', ...guarded, admin.showUser);
  router.delete('/admin/users/:user_id', ...guarded, admin.deleteUser);
  router.put('/admin/users/:user_id/roles', ...guarded, admin.setRoles);
  router.post('/admin/users/:user_id/disable', ...guarded, admin.disableUser);
  router.post('/admin/users/:user_id/enable', ...guarded, admin.enableUser);
  router.get('/admin/users/:user_id/sessions', ...guarded, admin.listSessions);
  router.delete('/admin/users/:user_id/sessions', ...guarded, admin.endSessions);
  router.delete('/admin/users/:user_id/sessions/:session_id', ...guarded, admin.endSession);
  router.get('/admin/keys', ...guarded, admin.listKeys);
}

/** Turns the router's bare 404/405/501 into errors in the one JSON format. */
async function routeMisses(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  await next();
  if (ctx.body !== undefined && ctx.body !== null && ctx.body !== '') return;
  // The router answers 501 for a method it has no route for at all, on any path: only a
  // path some route serves has methods to list in Allow; any other path does not exist.
  const allow = ctx.response.get('Allow');
  if ((ctx.status === 405 || ctx.status === 501) && allow !== '') {
    throw new MethodNotAllowedError('method not allowed on this endpoint', { headers: { Allow: allow } });
  }
  if (ctx.status === 404 || ctx.status === 405 || ctx.status === 501) {
    ctx.remove('Allow');
    throw new NotFoundError('no such endpoint');
  }
}

/** GET /dev/mail: the last mails dev mode "sent", newest first (links included: dev only). */
function devMailRoute(recent: () => readonly DevMail[]): Koa.Middleware {
  return function devMail(ctx) {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      messages: recent().map((mail) => ({
        id: mail.id,
        kind: mail.kind,
        to: mail.to,
        subject: mail.subject,
        link: mail.link,
        text: mail.text,
        sent_at: mail.sentAt,
      })),
    };
  };
}
