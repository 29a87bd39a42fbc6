/**
 * RP-Initiated Logout 1.0 at /oauth/logout, with openid-client building the logout URL:
 * a valid id_token_hint ends the sign-in session at once, anything else asks first; the
 * browser returns only to a post_logout_redirect_uri the client registered exactly.
 */
import * as client from 'openid-client';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningServer } from '../../src/main.js';
import { USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { FormBrowser, type PageResponse } from '../support/hosted-pages.js';
import { startRealServer, type RealServer } from '../support/real-server.js';

let real: RealServer;
let running: RunningServer;
let issuer: URL;
let config: client.Configuration;
const REDIRECT = 'http://127.0.0.1:43120/callback';
const SIGNED_OUT = 'http://127.0.0.1:43120/signed-out';

beforeAll(async () => {
  real = await startRealServer(inject('mongoUri'), 'oidc-logout');
  ({ running, issuer } = real);
  const base = { type: 'public' as const, firstParty: false, audiences: [], permissions: [], cookieMode: false, secretHash: undefined };
  await running.service.stores.clients.create({
    ...base,
    clientId: 'rp-spa',
    name: 'Relying party',
    grantTypes: ['authorization_code', 'refresh_token'],
    scopes: ['openid', 'profile', 'email'],
    redirectUris: [REDIRECT],
    postLogoutRedirectUris: [SIGNED_OUT],
  });
  config = await client.discovery(issuer, 'rp-spa', undefined, client.None(), { execute: [client.allowInsecureRequests] });
});

afterAll(async () => {
  await real?.stop();
});

async function signedIn(browser = new FormBrowser(issuer.origin)) {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
  });
  let page: PageResponse = await browser.get(url.href);
  if (page.html.includes('name="password"')) page = await browser.submit(page, { email: USER_EMAIL, password: USER_PASSWORD });
  if (page.html.includes('name="decision"')) page = await browser.submit(page, { decision: 'allow' });
  const tokens = await client.authorizationCodeGrant(config, new URL(page.location!), {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  return { browser, tokens };
}

/** Whether the browser's sign-in session still signs it in silently. */
async function stillSignedIn(browser: FormBrowser): Promise<boolean> {
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope: 'openid',
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const back = new URL((await browser.get(url.href)).location!);
  return back.searchParams.has('code');
}

describe('GET /oauth/logout (RP-Initiated Logout 1.0)', () => {
  it('with a valid id_token_hint: ends the session and its refresh tokens, clears the cookie, returns to the registered URI with state', async () => {
    const { browser, tokens } = await signedIn();
    expect(await stillSignedIn(browser)).toBe(true);
    const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: SIGNED_OUT, state: 'xyz' });
    const page = await browser.get(url.href);
    expect(page.status).toBe(302);
    expect(page.location).toBe(`${SIGNED_OUT}?state=xyz`);
    expect(page.headers.get('set-cookie')).toMatch(/session=;.*Max-Age=0/);
    expect(await stillSignedIn(browser)).toBe(false);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The security event stream names the family the sign-out ended, with its reason.
    const sid = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString()).sid as string;
    await running.service.events.flush();
    const events = (await running.service.stores.events.recent(50)).map((entry) => JSON.parse(entry.fields.event ?? '{}'));
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'family.revoked', subject: { type: 'family', id: sid }, data: expect.objectContaining({ reason: 'logout' }) }),
    );
  });

  it('without a hint: an accessible confirmation form (CSRF-bound, no script) before anything ends; "stay" keeps the session', async () => {
    const { browser } = await signedIn();
    const ask = await browser.get(new URL(`/oauth/logout?client_id=rp-spa&post_logout_redirect_uri=${encodeURIComponent(SIGNED_OUT)}`, issuer).href);
    expect(ask.status).toBe(200);
    expect(ask.html).toContain('name="decision" value="logout"');
    expect(ask.html).not.toContain('<script');
    expect(ask.headers.get('content-security-policy')).toContain(`form-action 'self' http://127.0.0.1:43120`);
    expect(await stillSignedIn(browser)).toBe(true);
    const stay = await browser.submit(ask, { decision: 'stay' });
    expect(stay.status).toBe(200);
    expect(stay.html).toContain('still signed in');
    expect(await stillSignedIn(browser)).toBe(true);
    const forged = await new FormBrowser(issuer.origin).submit(ask, { decision: 'logout' });
    expect(forged.status).toBe(400);
    expect(await stillSignedIn(browser)).toBe(true);
    const done = await browser.submit(ask, { decision: 'logout' });
    expect(done.status).toBe(303);
    expect(done.location).toBe(SIGNED_OUT);
    expect(await stillSignedIn(browser)).toBe(false);
  });

  it('without a post-logout URI: a signed-out page', async () => {
    const { browser, tokens } = await signedIn();
    const page = await browser.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }).href);
    expect(page.status).toBe(200);
    expect(page.html).toContain('You have signed out');
  });

  it('never redirects to an unregistered URI, and refuses a hint from another issuer, or an access token as a hint', async () => {
    const { browser, tokens } = await signedIn();
    const refused = async (params: Record<string, string>) => {
      const page = await browser.get(new URL(`/oauth/logout?${new URLSearchParams(params)}`, issuer).href);
      expect(page.status, JSON.stringify(params)).toBe(400);
      expect(page.location).toBeNull();
      expect(page.html).toContain('sign-out cannot continue');
    };
    await refused({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:43120/elsewhere' });
    await refused({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${SIGNED_OUT}/` });
    await refused({ post_logout_redirect_uri: SIGNED_OUT });
    await refused({ client_id: 'demo-spa', post_logout_redirect_uri: SIGNED_OUT });
    await refused({ id_token_hint: tokens.id_token!, client_id: 'demo-spa' });
    const { kid, privateKey } = running.service.keys.current().signingKey();
    const foreign = await new SignJWT({ iss: 'https://elsewhere.example', sub: 'x', aud: 'rp-spa', iat: 1, exp: 2 })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid })
      .sign(privateKey);
    await refused({ id_token_hint: foreign, post_logout_redirect_uri: SIGNED_OUT });
    await refused({ id_token_hint: tokens.access_token, post_logout_redirect_uri: SIGNED_OUT });
    expect(await stillSignedIn(browser)).toBe(true);
  });
});
