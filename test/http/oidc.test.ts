/**
 * OpenID Connect on the code flow: the ID token a code (and a refresh) brings, judged by
 * oauth4webapi, and kept apart from access tokens both ways.
 */
import * as oauth from 'oauth4webapi';
import type { KeyObject, webcrypto } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningServer } from '../../src/main.js';
import { createVerifier } from '../../packages/verifier/src/index.js';
import { USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { FormBrowser, type PageResponse } from '../support/hosted-pages.js';
import { startRealServer, type RealServer } from '../support/real-server.js';

let real: RealServer;
let running: RunningServer;
let issuer: URL;
let as: oauth.AuthorizationServer;
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const spa: oauth.Client = { client_id: 'demo-spa' };
const REDIRECT = 'http://127.0.0.1:43118/callback';

beforeAll(async () => {
  real = await startRealServer(inject('mongoUri'), 'oidc');
  ({ running, issuer } = real);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
});

afterAll(async () => {
  await real?.stop();
});

interface Started {
  readonly url: URL;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

async function authorizationUrl(extra: Record<string, string> = {}): Promise<Started> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: spa.client_id,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid profile email',
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return { url, verifier, state, nonce };
}

async function signIn(browser: FormBrowser, started: Started): Promise<URL> {
  let page: PageResponse = await browser.get(started.url.href);
  if (page.status === 200 && page.html.includes('name="password"')) page = await browser.submit(page, { email: USER_EMAIL, password: USER_PASSWORD });
  if (page.status === 200 && page.html.includes('name="decision"')) page = await browser.submit(page, { decision: 'allow' });
  expect(page.status, page.html.slice(0, 500)).toBeOneOf([302, 303]);
  return new URL(page.location!);
}

async function codeResponse(started: Started, callback: URL): Promise<Response> {
  const params = oauth.validateAuthResponse(as, spa, callback, started.state);
  return oauth.authorizationCodeGrantRequest(as, spa, oauth.None(), params, REDIRECT, started.verifier, insecure);
}

async function flow(extra: Record<string, string> = {}, browser = new FormBrowser(issuer.origin)) {
  const started = await authorizationUrl(extra);
  const response = await codeResponse(started, await signIn(browser, started));
  const body = (await response.clone().json()) as Record<string, string>;
  return { started, response, body, browser };
}

describe('the openid scope adds an ID token to the code exchange', () => {
  it('is a JWT (typ JWT, the active key, RS256) with the claims of OIDC Core §2, accepted by oauth4webapi with its nonce', async () => {
    const { started, response, body } = await flow();
    const result = await oauth.processAuthorizationCodeResponse(as, spa, response, { expectedNonce: started.nonce, requireIdToken: true });
    const claims = oauth.getValidatedIdTokenClaims(result)!;
    const header = decodeProtectedHeader(body.id_token!);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    expect(header.kid).toBe(running.service.keys.current().active.kid);
    const user = await running.service.stores.users.findByEmail(USER_EMAIL);
    expect(claims).toMatchObject({ iss: issuer.origin, sub: user!.id, aud: 'demo-spa', nonce: started.nonce, acr: '1', amr: ['pwd'] });
    expect(claims).toMatchObject({ email: USER_EMAIL, email_verified: true });
    expect(typeof claims.auth_time).toBe('number');
    expect(typeof claims.sid).toBe('string');
    expect(claims.at_hash).toBeTypeOf('string');
    expect(claims.exp - claims.iat).toBe(900);
    const sessions = await running.service.stores.browserSessions.listByUser(user!.id);
    expect(sessions.map((session) => session.id)).toContain(claims.sid);
  });

  it('carries email only with the email scope, no nonce when none was sent, and no ID token without openid', async () => {
    const browser = new FormBrowser(issuer.origin);
    const { body } = await flow({ scope: 'openid profile', nonce: '' }, browser);
    const claims = decodeJwt(body.id_token!);
    expect(claims).not.toHaveProperty('email');
    expect(claims).not.toHaveProperty('email_verified');
    expect(claims).not.toHaveProperty('nonce');
    const plain = await flow({ scope: 'profile' }, browser);
    expect(plain.body.access_token).toBeTypeOf('string');
    expect(plain.body).not.toHaveProperty('id_token');
  });

  it('echoes the nonce exactly, and oauth4webapi refuses the response when it expected another nonce or none', async () => {
    const nonce = 'n-0S6_WzA2Mj é/+=';
    const { response, body } = await flow({ nonce });
    expect(decodeJwt(body.id_token!).nonce).toBe(nonce);
    await expect(oauth.processAuthorizationCodeResponse(as, spa, response.clone(), { expectedNonce: 'another' })).rejects.toThrow(/nonce/);
    await expect(oauth.processAuthorizationCodeResponse(as, spa, response.clone(), { expectedNonce: oauth.expectNoNonce })).rejects.toThrow(/nonce/);
  });

  it('refreshing an openid family brings a new ID token with the same sub, auth_time and sid', async () => {
    const { started, response } = await flow();
    const first = await oauth.processAuthorizationCodeResponse(as, spa, response, { expectedNonce: started.nonce });
    const before = oauth.getValidatedIdTokenClaims(first)!;
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      spa,
      await oauth.refreshTokenGrantRequest(as, spa, oauth.None(), first.refresh_token!, insecure),
    );
    const after = oauth.getValidatedIdTokenClaims(refreshed)!;
    expect(refreshed.id_token).not.toBe(first.id_token);
    expect(after).toMatchObject({ sub: before.sub, auth_time: before.auth_time, sid: before.sid, aud: 'demo-spa', amr: ['pwd'] });
    expect(after).not.toHaveProperty('nonce');
  });
});

describe('ID tokens and access tokens never pass for each other', () => {
  it('an ID token is refused as an access token by /auth/me and by the verifier kit', async () => {
    const { body } = await flow();
    const me = await fetch(new URL('/auth/me', issuer), { headers: { authorization: `Bearer ${body.id_token}` } });
    expect(me.status).toBe(401);
    expect(me.headers.get('www-authenticate')).toMatch(/invalid_token/);
    const ok = await fetch(new URL('/auth/me', issuer), { headers: { authorization: `Bearer ${body.access_token}` } });
    expect(ok.status).toBe(200);
    const verifier = createVerifier({ issuer: issuer.origin, audience: issuer.origin });
    await expect(verifier.verify(body.access_token!)).resolves.toBeDefined();
    await expect(verifier.verify(body.id_token!)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('an access token in the id_token member is refused by oauth4webapi', async () => {
    const { body } = await flow();
    const forged = new Response(JSON.stringify({ ...body, id_token: body.access_token }), { headers: { 'content-type': 'application/json' } });
    await expect(oauth.processAuthorizationCodeResponse(as, spa, forged)).rejects.toThrow();
  });
});

describe('discovery: /.well-known/openid-configuration', () => {
  it('holds every member of the RFC 8414 document with the same value, plus what OIDC Discovery asks', async () => {
    const oauthDoc = (await (await fetch(new URL('/.well-known/oauth-authorization-server', issuer))).json()) as Record<string, unknown>;
    const res = await fetch(new URL('/.well-known/openid-configuration', issuer));
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBeTruthy();
    const oidc = (await res.json()) as Record<string, unknown>;
    for (const [name, value] of Object.entries(oauthDoc)) {
      if (name === 'scopes_supported') expect(oidc[name]).toEqual(expect.arrayContaining(value as string[]));
      else expect(oidc[name], name).toEqual(value);
    }
    expect(oidc).toMatchObject({
      issuer: issuer.origin,
      userinfo_endpoint: `${issuer.origin}/oauth/userinfo`,
      end_session_endpoint: `${issuer.origin}/oauth/logout`,
      id_token_signing_alg_values_supported: ['RS256'],
      subject_types_supported: ['public'],
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      frontchannel_logout_supported: false,
      claims_parameter_supported: false,
    });
    expect(oidc.scopes_supported).toContain('openid');
    expect(oidc.claims_supported).toEqual(expect.arrayContaining(['sub', 'email', 'email_verified', 'name', 'sid', 'auth_time']));
    expect(oidc.id_token_signing_alg_values_supported).not.toContain('none');
    const discovered = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
    expect(discovered.userinfo_endpoint).toBe(`${issuer.origin}/oauth/userinfo`);
  });
});

describe('GET and POST /oauth/userinfo (OIDC Core §5.3, RFC 6750)', () => {
  const userinfo = (init: RequestInit = {}) => fetch(new URL('/oauth/userinfo', issuer), init);

  it("answers the claims of the token's scopes, by GET, by POST with the header, and by POST with a form field", async () => {
    const { body } = await flow();
    const user = await running.service.stores.users.findByEmail(USER_EMAIL);
    expect(user!.name).toBeTypeOf('string');
    const expected = { sub: user!.id, name: user!.name, email: USER_EMAIL, email_verified: true };
    const get = await userinfo({ headers: { authorization: `Bearer ${body.access_token}` } });
    expect(get.status).toBe(200);
    expect(get.headers.get('cache-control')).toBe('no-store');
    expect(await get.json()).toEqual(expected);
    const post = await userinfo({ method: 'POST', headers: { authorization: `Bearer ${body.access_token}` } });
    expect(await post.json()).toEqual(expected);
    const form = await userinfo({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: body.access_token! }),
    });
    expect(await form.json()).toEqual(expected);
    const judged = await oauth.processUserInfoResponse(as, spa, user!.id, await oauth.userInfoRequest(as, spa, body.access_token!, insecure));
    expect(judged).toMatchObject(expected);
    const narrow = await flow({ scope: 'openid' });
    expect(await (await userinfo({ headers: { authorization: `Bearer ${narrow.body.access_token}` } })).json()).toEqual({ sub: user!.id });
  });

  it('answers RFC 6750 §3 errors: no token, a bad one, an ID token, both methods at once, a token without openid', async () => {
    const none = await userinfo();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const bad = await userinfo({ headers: { authorization: 'Bearer not-a-token' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(await bad.json()).toMatchObject({ error: 'invalid_token' });
    const { body } = await flow();
    expect((await userinfo({ headers: { authorization: `Bearer ${body.id_token}` } })).status).toBe(401);
    const both = await userinfo({
      method: 'POST',
      headers: { authorization: `Bearer ${body.access_token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: body.access_token! }),
    });
    expect(both.status).toBe(400);
    expect(await both.json()).toMatchObject({ error: 'invalid_request' });
    const plain = await flow({ scope: 'profile' });
    const refused = await userinfo({ headers: { authorization: `Bearer ${plain.body.access_token}` } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
    expect(await refused.json()).toMatchObject({ error: 'insufficient_scope' });
  });
});

describe('authorization request parameters of OIDC Core §3.1.2.1', () => {
  const callbackOf = (page: PageResponse) => new URL(page.location!);
  const isLogin = (page: PageResponse) => page.status === 200 && page.html.includes('name="password"');

  it('prompt=none without a session: login_required at the redirect URI, with state and iss', async () => {
    const started = await authorizationUrl({ prompt: 'none' });
    const page = await new FormBrowser(issuer.origin).get(started.url.href);
    expect(page.status).toBe(302);
    const back = callbackOf(page);
    expect(Object.fromEntries(back.searchParams)).toMatchObject({ error: 'login_required', state: started.state, iss: issuer.origin });
  });

  it('prompt=none needing a consent not yet given: consent_required', async () => {
    const browser = new FormBrowser(issuer.origin);
    const user = await running.service.stores.users.findByEmail(USER_EMAIL);
    await running.service.stores.consents.revoke(user!.id, 'demo-spa');
    await flow({ scope: 'openid' }, browser);
    const silent = await authorizationUrl({ prompt: 'none', scope: 'openid email' });
    const back = callbackOf(await browser.get(silent.url.href));
    expect(back.searchParams.get('error')).toBe('consent_required');
    const covered = await authorizationUrl({ prompt: 'none', scope: 'openid' });
    expect(callbackOf(await browser.get(covered.url.href)).searchParams.get('code')).toBeTruthy();
  });

  it('prompt=login and prompt=select_account show the login page to a signed-in browser', async () => {
    const browser = new FormBrowser(issuer.origin);
    await flow({}, browser);
    for (const prompt of ['login', 'select_account', 'consent select_account']) {
      expect(isLogin(await browser.get((await authorizationUrl({ prompt })).url.href)), prompt).toBe(true);
    }
    expect(isLogin(await browser.get((await authorizationUrl()).url.href))).toBe(false);
  });

  it('max_age: an older sign-in is repeated and the ID token then carries the new auth_time', async () => {
    const browser = new FormBrowser(issuer.origin);
    const first = await flow({}, browser);
    const before = decodeJwt(first.body.id_token!);
    expect(isLogin(await browser.get((await authorizationUrl({ max_age: '3600' })).url.href))).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const started = await authorizationUrl({ max_age: '1' });
    const page = await browser.get(started.url.href);
    expect(isLogin(page)).toBe(true);
    const back = callbackOf(await browser.submit(page, { email: USER_EMAIL, password: USER_PASSWORD }));
    const response = await codeResponse(started, back);
    const result = await oauth.processAuthorizationCodeResponse(as, spa, response, { expectedNonce: started.nonce, maxAge: 1 });
    const after = oauth.getValidatedIdTokenClaims(result)!;
    expect(after.auth_time!).toBeGreaterThan(before.auth_time as number);
    expect(after.sid).not.toBe(before.sid);
  });

  it('login_hint fills in the email field; ui_locales=en (or another) is accepted', async () => {
    const page = await new FormBrowser(issuer.origin).get((await authorizationUrl({ login_hint: 'someone@example.com', ui_locales: 'fr en' })).url.href);
    expect(page.html).toMatch(/name="email"[^>]*value="someone@example.com"|value="someone@example.com"[^>]*name="email"/);
  });

  it('id_token_hint: ours is accepted even expired; another issuer, another key or an access token is refused; another user than the signed-in one needs a login', async () => {
    const browser = new FormBrowser(issuer.origin);
    const { body } = await flow({}, browser);
    const withHint = async (hint: string, extra: Record<string, string> = {}) =>
      browser.get((await authorizationUrl({ id_token_hint: hint, ...extra })).url.href);
    expect(callbackOf(await withHint(body.id_token!, { prompt: 'none' })).searchParams.get('code')).toBeTruthy();
    const signer = running.service.keys.current().signingKey();
    const sign = (claims: Record<string, unknown>, key: KeyObject | webcrypto.CryptoKey = signer.privateKey) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: signer.kid }).sign(key);
    const base = { ...decodeJwt(body.id_token!) };
    const expired = await sign({ ...base, iat: 1_000_000, exp: 1_000_600 });
    expect(callbackOf(await withHint(expired, { prompt: 'none' })).searchParams.get('code')).toBeTruthy();
    const other = await sign({ ...base, sub: 'another-user' });
    expect(callbackOf(await withHint(other, { prompt: 'none' })).searchParams.get('error')).toBe('login_required');
    expect(isLogin(await withHint(other))).toBe(true);
    const { privateKey } = await generateKeyPair('RS256');
    for (const refused of [await sign({ ...base, iss: 'https://elsewhere.example' }), await sign(base, privateKey), body.access_token!, 'garbage']) {
      const back = callbackOf(await withHint(refused));
      expect(Object.fromEntries(back.searchParams)).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/id_token_hint/) });
    }
  });

  it('the claims parameter is refused with a clear error, a request object with request_not_supported', async () => {
    const browser = new FormBrowser(issuer.origin);
    const claims = callbackOf(await browser.get((await authorizationUrl({ claims: '{"id_token":{"email":null}}' })).url.href));
    expect(Object.fromEntries(claims.searchParams)).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/claims parameter/) });
    const request = callbackOf(await browser.get((await authorizationUrl({ request: 'eyJhbGciOiJub25lIn0.e30.' })).url.href));
    expect(request.searchParams.get('error')).toBe('request_not_supported');
  });
});
