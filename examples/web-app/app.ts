/**
 * The example web app: one node:http server holding two clients of the authority, both on
 * oauth4webapi, both signing in through the hosted pages with the authorization code flow
 * and PKCE (S256), both checking `state` and `iss`, and both calling the example API's /me.
 *
 *   /app...             a server-side confidential client: tokens stay on this server, the
 *                       browser holds only an HttpOnly cookie naming its session here.
 *                       With `openid` in the scope it signs in with OpenID Connect: a
 *                       nonce, the ID token validated by oauth4webapi, and its claims shown.
 *   /spa and /callback  a single-page public client (spa/app.js) running in the browser
 *                       with oauth4webapi's browser build, served from node_modules.
 *
 * The SPA owns /callback because the seeded client demo-spa is registered with
 * http://127.0.0.1/callback (any loopback port, RFC 8252 §7.3); the server app's redirect
 * URI is /app/callback, registered when its client is created (README.md).
 *
 * This app shares the host 127.0.0.1 with an authority on another port, and cookies ignore
 * ports: its cookie names (`web_*`) must not be the authority's (`authz`, `session`).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';

export interface WebAppOptions {
  /** The authority's issuer. */
  readonly issuer: URL;
  /** The example resource server (its /me). */
  readonly api: URL;
  /** This app's own origin, e.g. http://127.0.0.1:8080: the base of both redirect URIs. */
  readonly origin: string;
  /** The confidential client; without it /app explains how to create one. */
  readonly web: { readonly clientId: string; readonly clientSecret: string } | undefined;
  readonly spaClientId: string;
  readonly scope: string;
}

const TX_COOKIE = 'web_tx';
const SESSION_COOKIE = 'web_session';
const SPA_DIR = join(import.meta.dirname, 'spa');
const OAUTH4WEBAPI = createRequire(import.meta.url).resolve('oauth4webapi');

/** Plain http only to a loopback authority (local development); anything else must be https. */
export const isLoopback = (url: URL) => ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);

export function createWebApp(options: WebAppOptions): RequestListener {
  const insecure = isLoopback(options.issuer) ? { [oauth.allowInsecureRequests]: true } : {};
  const redirectUri = `${options.origin}/app/callback`;
  const sessions = new Map<string, { email: string; accessToken: string; idToken: oauth.IDToken | undefined }>();
  const openid = options.scope.split(' ').includes('openid');
  const csp = `default-src 'none'; script-src 'self'; connect-src 'self' ${options.issuer.origin} ${options.api.origin}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

  let discovery: Promise<oauth.AuthorizationServer> | undefined;
  const authorizationServer = () => {
    discovery ??= oauth
      .discoveryRequest(options.issuer, { algorithm: openid ? 'oidc' : 'oauth2', ...insecure })
      .then((response) => oauth.processDiscoveryResponse(options.issuer, response))
      .catch((err: unknown) => {
        discovery = undefined;
        throw err;
      });
    return discovery;
  };

  const callApi = (accessToken: string) => fetch(new URL('/me', options.api), { headers: { authorization: `Bearer ${accessToken}` } });

  function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string | string[]> = {}) {
    res
      .writeHead(status, { 'content-type': type, 'content-security-policy': csp, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers })
      .end(body);
  }
  const page = (res: ServerResponse, status: number, title: string, body: string, headers?: Record<string, string | string[]>) =>
    send(res, status, 'text/html; charset=utf-8', layout(title, body), headers);

  /** The server app's home: signed in or not, and what the API says with our token. */
  async function home(req: IncomingMessage, res: ServerResponse) {
    if (!options.web) return page(res, 200, 'Server app', html`<p>No client configured: set WEB_CLIENT_ID and WEB_CLIENT_SECRET (see README.md).</p>`);
    const session = sessions.get(readCookie(req, SESSION_COOKIE) ?? '');
    if (!session)
      return page(
        res,
        200,
        'Server app',
        html`<p>Not signed in.</p>
          <p><a href="/app/login">Sign in</a></p>`,
      );
    const api = await callApi(session.accessToken);
    page(
      res,
      200,
      'Server app',
      html`<p id="user">Signed in as ${session.email}</p>` +
        (session.idToken
          ? html`<h2>ID token claims</h2>
              <pre id="id-token">${JSON.stringify(session.idToken, null, 2)}</pre>`
          : '') +
        html`<h2>GET ${options.api.origin}/me answered ${api.status}</h2>
          <pre id="api">${await api.text()}</pre>`,
    );
  }

  /** Starts a sign-in: PKCE and state, kept in an HttpOnly cookie until the callback. */
  async function login(res: ServerResponse, web: NonNullable<WebAppOptions['web']>) {
    const as = await authorizationServer();
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    // OIDC Core §3.1.2.1: a nonce binds the ID token to this browser's sign-in.
    const nonce = openid ? oauth.generateRandomNonce() : '';
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: web.clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: options.scope,
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...(openid && { nonce }),
    }).toString();
    const cookie = `${TX_COOKIE}=${state}.${verifier}.${nonce}; Path=/app; HttpOnly; SameSite=Lax; Max-Age=600`;
    send(res, 303, 'text/plain', '', { location: url.href, 'set-cookie': cookie });
  }

  /** The redirect back: state and iss checked, the code exchanged with our secret, the API called. */
  async function callback(req: IncomingMessage, res: ServerResponse, web: NonNullable<WebAppOptions['web']>) {
    const [state, verifier, nonce] = (readCookie(req, TX_COOKIE) ?? '').split('.');
    const clear = { 'set-cookie': `${TX_COOKIE}=; Path=/app; HttpOnly; SameSite=Lax; Max-Age=0` };
    if (!state || !verifier) return page(res, 400, 'Sign-in failed', html`<p>No sign-in was started in this browser.</p>`, clear);
    const as = await authorizationServer();
    const client: oauth.Client = { client_id: web.clientId };
    let tokens;
    try {
      const params = oauth.validateAuthResponse(as, client, new URL(req.url ?? '/', options.origin), state);
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        oauth.ClientSecretBasic(web.clientSecret),
        params,
        redirectUri,
        verifier,
        insecure,
      );
      tokens = await oauth.processAuthorizationCodeResponse(
        as,
        client,
        response,
        openid ? { expectedNonce: nonce || oauth.expectNoNonce, requireIdToken: true } : undefined,
      );
    } catch (err) {
      const reason =
        err instanceof oauth.AuthorizationResponseError || err instanceof oauth.ResponseBodyError
          ? `${err.error}: ${err.error_description ?? ''}`
          : (err as Error).message;
      return page(
        res,
        400,
        'Sign-in failed',
        html`<p>${reason}</p>
          <p><a href="/app/login">Try again</a></p>`,
        clear,
      );
    }
    const api = await callApi(tokens.access_token);
    if (!api.ok) return page(res, 502, 'Sign-in failed', html`<p>The API answered ${api.status}.</p>`, clear);
    const { email } = (await api.json()) as { email?: string };
    const id = oauth.generateRandomState();
    sessions.set(id, { email: email ?? '(no email)', accessToken: tokens.access_token, idToken: openid ? oauth.getValidatedIdTokenClaims(tokens) : undefined });
    const cookie = `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`;
    send(res, 303, 'text/plain', '', { location: '/app', 'set-cookie': [clear['set-cookie'], cookie] });
  }

  async function route(req: IncomingMessage, res: ServerResponse) {
    const { pathname } = new URL(req.url ?? '/', options.origin);
    if (req.method !== 'GET') return page(res, 405, 'Not allowed', html`<p>Only GET here.</p>`, { allow: 'GET' });
    switch (pathname) {
      case '/':
        return page(
          res,
          200,
          'Example web app',
          html`<ul>
            <li><a href="/app">Server app (confidential client)</a></li>
            <li><a href="/spa">Single-page app (public client)</a></li>
          </ul>`,
        );
      case '/app':
        return home(req, res);
      case '/app/login':
        return options.web ? login(res, options.web) : home(req, res);
      case '/app/callback':
        return options.web ? callback(req, res, options.web) : home(req, res);
      case '/spa':
      case '/callback':
        return send(res, 200, 'text/html; charset=utf-8', readFileSync(join(SPA_DIR, 'index.html')));
      case '/spa/app.js':
        return send(res, 200, 'text/javascript; charset=utf-8', readFileSync(join(SPA_DIR, 'app.js')));
      case '/spa/config.json':
        return send(
          res,
          200,
          'application/json',
          JSON.stringify({ issuer: options.issuer.href, api: options.api.href, clientId: options.spaClientId, scope: options.scope }),
        );
      case '/vendor/oauth4webapi.js':
        return send(res, 200, 'text/javascript; charset=utf-8', readFileSync(OAUTH4WEBAPI));
      default:
        return page(res, 404, 'Not found', html`<p>Nothing here. <a href="/">Home</a></p>`);
    }
  }

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      process.stderr.write(`web app: ${err instanceof Error ? err.stack : String(err)}\n`);
      if (!res.headersSent) page(res, 500, 'Error', html`<p>Something went wrong; see the server's output.</p>`);
    });
  };
}

/** A tagged template that HTML-escapes every interpolated value. */
function html(strings: TemplateStringsArray, ...values: unknown[]): string {
  const escape = (value: unknown) => String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return strings.reduce((out, text, index) => out + escape(values[index - 1]) + text);
}

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${html`${title}`}</title></head><body><main><h1>${html`${title}`}</h1>${body}</main></body></html>`;
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=') || undefined;
  }
  return undefined;
}
