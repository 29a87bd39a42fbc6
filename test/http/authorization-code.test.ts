/**
 * The authorization code flow with PKCE over HTTP, driven by a standard third-party client
 * library (oauth4webapi) for everything a client does, and by a cookie-keeping form poster
 * for what the user does on the hosted pages. Then the same flow from the attacker's side.
 */
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningServer } from '../../src/main.js';
import { CLIENT_SECRET, USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { startRealServer, type RealServer } from '../support/real-server.js';
import { FormBrowser, readForm, type PageResponse } from '../support/hosted-pages.js';

let real: RealServer;
let running: RunningServer;
let issuer: URL;
let as: oauth.AuthorizationServer;
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const spa: oauth.Client = { client_id: 'demo-spa' };
const REDIRECT = 'http://127.0.0.1:43117/callback';
const basic = `Basic ${Buffer.from(`demo-service:${CLIENT_SECRET}`).toString('base64')}`;

beforeAll(async () => {
  real = await startRealServer(inject('mongoUri'), 'code-flow');
  ({ running, issuer } = real);
  const base = { firstParty: false, audiences: [], permissions: [], cookieMode: false, secretHash: undefined, type: 'public' as const };
  await running.service.stores.clients.create({
    ...base,
    clientId: 'other-spa',
    name: 'Other app',
    grantTypes: ['authorization_code', 'refresh_token'],
    scopes: ['profile'],
    redirectUris: ['http://127.0.0.1/callback'],
  });
  await running.service.stores.clients.create({
    ...base,
    clientId: 'par-only',
    name: 'PAR app',
    grantTypes: ['authorization_code'],
    scopes: ['profile'],
    redirectUris: ['http://127.0.0.1/callback'],
    requirePar: true,
  });
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
});

afterAll(async () => {
  await real?.stop();
});

interface Started {
  readonly url: URL;
  readonly verifier: string;
  readonly state: string;
}

async function authorizationUrl(client: oauth.Client = spa, extra: Record<string, string> = {}): Promise<Started> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'profile',
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return { url, verifier, state };
}

/** Signs in on the hosted page and allows the consent if asked; the redirect back to the client. */
async function signIn(browser: FormBrowser, started: Started, password = USER_PASSWORD): Promise<URL> {
  let page: PageResponse = await browser.get(started.url.href);
  if (page.status === 200 && page.html.includes('name="password"')) page = await browser.submit(page, { email: USER_EMAIL, password });
  if (page.status === 200 && page.html.includes('name="decision"')) page = await browser.submit(page, { decision: 'allow' });
  expect(page.status, page.html.slice(0, 500)).toBeOneOf([302, 303]);
  return new URL(page.location!);
}

async function exchange(client: oauth.Client, started: Started, callback: URL) {
  const params = oauth.validateAuthResponse(as, client, callback, started.state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, started.verifier, insecure);
  return oauth.processAuthorizationCodeResponse(as, client, response);
}

async function introspect(token: string): Promise<{ active: boolean }> {
  const res = await fetch(as.introspection_endpoint!, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  return (await res.json()) as { active: boolean };
}

async function tokenRequest(fields: Record<string, string>) {
  const res = await fetch(as.token_endpoint!, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('authorization code + PKCE, as a third-party client sees it', () => {
  it('signs in, asks consent once, returns code, state and iss, and exchanges the code for tokens that refresh', async () => {
    const browser = new FormBrowser(issuer.origin);
    const started = await authorizationUrl();
    const first = await browser.get(started.url.href);
    expect(first.status).toBe(200);
    expect(first.html).toMatch(/name="email"[^>]*autocomplete="username"/);
    expect(first.headers.get('content-security-policy')).toContain("form-action 'self' http://127.0.0.1:43117");
    expect(first.headers.get('x-frame-options')).toBe('DENY');
    expect(first.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const consent = await browser.submit(first, { email: USER_EMAIL, password: USER_PASSWORD });
    expect(consent.html).toContain('name="decision"');
    const back = await browser.submit(consent, { decision: 'allow' });
    expect(back.status).toBe(303);
    const callback = new URL(back.location!);
    expect(callback.origin + callback.pathname).toBe(REDIRECT);
    expect(callback.searchParams.get('iss')).toBe(issuer.origin);
    expect(callback.searchParams.get('state')).toBe(started.state);
    expect(callback.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const tokens = await exchange(spa, started, callback);
    expect(tokens.scope).toBe('profile');
    expect(tokens.refresh_token).toEqual(expect.any(String));
    const claims = await oauth.validateJwtAccessToken(
      as,
      new Request('http://api.test/', { headers: { authorization: `Bearer ${tokens.access_token}` } }),
      issuer.origin,
      insecure,
    );
    expect(claims).toMatchObject({ client_id: 'demo-spa', scope: 'profile', email: USER_EMAIL });
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      spa,
      await oauth.refreshTokenGrantRequest(as, spa, oauth.None(), tokens.refresh_token!, insecure),
    );
    expect(refreshed.access_token).not.toBe(tokens.access_token);

    // SSO and a remembered consent: the next sign-in in this browser goes straight back.
    const again = await authorizationUrl();
    const direct = await browser.get(again.url.href);
    expect(direct.status).toBe(302);
    expect((await exchange(spa, again, new URL(direct.location!))).access_token).toEqual(expect.any(String));
  });

  it('asks again when the scope grows, and for prompt=login and prompt=consent', async () => {
    const browser = new FormBrowser(issuer.origin);
    await signIn(browser, await authorizationUrl());
    expect((await browser.get((await authorizationUrl(spa, { scope: 'profile email' })).url.href)).html).toContain('name="decision"');
    expect((await browser.get((await authorizationUrl(spa, { prompt: 'login' })).url.href)).html).toContain('name="password"');
    expect((await browser.get((await authorizationUrl(spa, { prompt: 'consent' })).url.href)).html).toContain('name="decision"');
  });

  it('pushes the request first (PAR) and then authorizes with client_id and request_uri alone', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const params = new URLSearchParams({
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'profile',
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const pushed = await oauth.processPushedAuthorizationResponse(as, spa, await oauth.pushedAuthorizationRequest(as, spa, oauth.None(), params, insecure));
    expect(pushed.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect(pushed.expires_in).toBe(60);
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({ client_id: 'demo-spa', request_uri: pushed.request_uri }).toString();
    const browser = new FormBrowser(issuer.origin);
    const callback = await signIn(browser, { url, verifier, state });
    expect((await exchange(spa, { url, verifier, state }, callback)).access_token).toEqual(expect.any(String));
    // Single use: the same request_uri again is refused on our own page.
    const reused = await browser.get(url.href);
    expect(reused.status).toBe(400);
    expect(reused.location).toBeNull();
  });

  it('answers prompt=none without a sign-in with login_required at the redirect URI', async () => {
    const started = await authorizationUrl(spa, { prompt: 'none' });
    const res = await new FormBrowser(issuer.origin).get(started.url.href);
    const callback = new URL(res.location!);
    expect(Object.fromEntries(callback.searchParams)).toMatchObject({ error: 'login_required', state: started.state, iss: issuer.origin });
  });
});

describe("the user's view: consents and sign-in sessions", () => {
  async function api(method: string, path: string, token: string) {
    const res = await fetch(`${issuer.origin}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: res.status === 204 ? undefined : ((await res.json()) as Record<string, unknown>) };
  }

  it("lists the consents and the browser sign-ins, and withdrawing a consent ends that client's sessions and asks again", async () => {
    const browser = new FormBrowser(issuer.origin);
    const started = await authorizationUrl();
    const tokens = await exchange(spa, started, await signIn(browser, started));
    const me = await oauth.processGenericTokenEndpointResponse(
      as,
      { client_id: 'demo-app' },
      await oauth.genericTokenEndpointRequest(
        as,
        { client_id: 'demo-app' },
        oauth.None(),
        'password',
        { username: USER_EMAIL, password: USER_PASSWORD },
        insecure,
      ),
    );
    const consents = (await api('GET', '/auth/consents', me.access_token)).body as { consents: { client_id: string; scope: string }[] };
    expect(consents.consents).toContainEqual(expect.objectContaining({ client_id: 'demo-spa', scope: expect.stringContaining('profile') }));
    const sessions = (await api('GET', '/auth/sessions', me.access_token)).body as { browser_sessions: { id: string }[] };
    expect(sessions.browser_sessions.length).toBeGreaterThan(0);

    expect((await api('DELETE', '/auth/consents/demo-spa', me.access_token)).status).toBe(204);
    expect((await introspect(tokens.refresh_token!)).active).toBe(false);
    expect((await api('DELETE', '/auth/consents/demo-spa', me.access_token)).status).toBe(404);
    // Still signed in at the authority, but the app must ask again.
    expect((await browser.get((await authorizationUrl()).url.href)).html).toContain('name="decision"');
  });

  it('ends every browser sign-in on logout-all, so the next authorization asks for the password', async () => {
    const browser = new FormBrowser(issuer.origin);
    await signIn(browser, await authorizationUrl());
    expect((await browser.get((await authorizationUrl()).url.href)).status).toBe(302);
    const me = await oauth.processGenericTokenEndpointResponse(
      as,
      { client_id: 'demo-app' },
      await oauth.genericTokenEndpointRequest(
        as,
        { client_id: 'demo-app' },
        oauth.None(),
        'password',
        { username: USER_EMAIL, password: USER_PASSWORD },
        insecure,
      ),
    );
    expect((await api('POST', '/auth/logout-all', me.access_token)).status).toBe(200);
    expect((await browser.get((await authorizationUrl()).url.href)).html).toContain('name="password"');
  });
});

describe("authorization code + PKCE, from the attacker's side", () => {
  it('never redirects for an unknown client or an unregistered redirect URI, and says so on a page', async () => {
    for (const [client, redirect] of [
      ['nobody', REDIRECT],
      ['demo-spa', 'https://evil.example/callback'],
      ['demo-spa', 'http://127.0.0.1:43117/callback/../x'],
      ['demo-spa', 'http://127.0.0.1.evil.example/callback'],
    ] as const) {
      const url = (await authorizationUrl({ client_id: client })).url;
      url.searchParams.set('redirect_uri', redirect);
      const res = await new FormBrowser(issuer.origin).get(url.href);
      expect(res.status).toBe(400);
      expect(res.location).toBeNull();
      expect(res.headers.get('content-type')).toMatch(/text\/html/);
      expect(res.html).toContain('<html lang="en"');
    }
  });

  it('sends every other error to the redirect URI with state and iss, never a reflected script', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ code_challenge_method: 'plain' }, 'invalid_request'],
      [{ code_challenge: 'short' }, 'invalid_request'],
      [{ scope: 'admin' }, 'invalid_scope'],
      [{ resource: 'https://other.example' }, 'invalid_target'],
      [{ prompt: 'select_everything' }, 'invalid_request'],
    ];
    for (const [extra, error] of cases) {
      const started = await authorizationUrl(spa, { ...extra, state: '"><script>alert(1)</script>' });
      const res = await new FormBrowser(issuer.origin).get(started.url.href);
      expect(res.status, JSON.stringify(extra)).toBe(302);
      const callback = new URL(res.location!);
      expect(callback.origin + callback.pathname).toBe(REDIRECT);
      expect(callback.searchParams.get('error')).toBe(error);
      expect(callback.searchParams.get('state')).toBe('"><script>alert(1)</script>');
      expect(callback.searchParams.get('iss')).toBe(issuer.origin);
      expect(res.location).not.toContain('<script>');
    }
  });

  it('refuses a plain authorization request from a client that must push its requests', async () => {
    const res = await new FormBrowser(issuer.origin).get(
      (await authorizationUrl({ client_id: 'par-only' }, { redirect_uri: 'http://127.0.0.1:5000/callback' })).url.href,
    );
    expect(res.location).not.toBeNull();
    expect(new URL(res.location!).searchParams.get('error')).toBe('invalid_request');
  });

  it('revokes the session and the access token when a code is presented twice', async () => {
    const started = await authorizationUrl();
    const callback = await signIn(new FormBrowser(issuer.origin), started);
    const tokens = await exchange(spa, started, callback);
    expect((await introspect(tokens.access_token)).active).toBe(true);
    const replay = await tokenRequest({
      grant_type: 'authorization_code',
      client_id: 'demo-spa',
      code: callback.searchParams.get('code')!,
      redirect_uri: REDIRECT,
      code_verifier: started.verifier,
    });
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect((await introspect(tokens.access_token)).active).toBe(false);
    expect((await introspect(tokens.refresh_token!)).active).toBe(false);
  });

  it("refuses a wrong verifier, another code's verifier, another redirect URI and another client, each burning nothing it should not", async () => {
    const browser = new FormBrowser(issuer.origin);
    const a = await authorizationUrl();
    const codeA = (await signIn(browser, a)).searchParams.get('code')!;
    const b = await authorizationUrl();
    const codeB = (await signIn(browser, b)).searchParams.get('code')!;
    const grant = (fields: Record<string, string>) =>
      tokenRequest({ grant_type: 'authorization_code', client_id: 'demo-spa', redirect_uri: REDIRECT, ...fields });
    // Another client cannot use (or burn) the code: the owner still can afterwards.
    expect(await grant({ client_id: 'other-spa', code: codeA, code_verifier: a.verifier })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await grant({ code: codeA, code_verifier: b.verifier })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await grant({ code: codeB, code_verifier: b.verifier, redirect_uri: 'http://127.0.0.1:9999/callback' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    expect(await grant({ code: 'x'.repeat(43), code_verifier: a.verifier })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    // A code is one attempt: after a wrong verifier it is spent.
    expect(await grant({ code: codeA, code_verifier: a.verifier })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('refuses a login form without its CSRF token, from another browser, or changed', async () => {
    const victim = new FormBrowser(issuer.origin);
    const page = await victim.get((await authorizationUrl()).url.href);
    const { csrf } = readForm(page.html);
    const attacker = new FormBrowser(issuer.origin);
    await attacker.get((await authorizationUrl()).url.href);
    for (const [browser, token] of [
      [victim, ''],
      [attacker, csrf],
      [victim, csrf.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))],
    ] as const) {
      const res = await browser.post('/oauth/authorize/login', { csrf: token, email: USER_EMAIL, password: USER_PASSWORD });
      expect(res.status).toBe(400);
      expect(res.location).toBeNull();
      expect(browser.cookie('session')).toBeUndefined();
    }
  });

  it('tells the user the password was wrong without saying whether the account exists', async () => {
    const answers: string[] = [];
    for (const email of [USER_EMAIL, 'nobody-here@example.com']) {
      const browser = new FormBrowser(issuer.origin);
      const page = await browser.get((await authorizationUrl()).url.href);
      const res = await browser.submit(page, { email, password: 'not the password at all' });
      expect(res.status).toBe(400);
      answers.push(res.html.replace(/name="csrf" value="[^"]+"/, '').replace(/value="[^"]*@example.com"/, ''));
    }
    expect(answers[0]).toBe(answers[1]);
  });
});
