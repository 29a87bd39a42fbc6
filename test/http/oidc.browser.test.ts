/**
 * One OpenID Connect journey in a real Chromium, openid-client as the relying party: sign
 * in on the hosted pages (code + PKCE + nonce), the ID token validated, userinfo, a refresh
 * with a new ID token; then RP-initiated logout without a hint, through the confirmation
 * page, back to the registered post-logout URI. axe-core finds no WCAG 2.2 AA violation on
 * the logout pages, and they work with JavaScript off.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { expectNoAxeViolations, launchChromium, saveScreenshot } from '../support/browser.js';
import { startRealServer, type RealServer } from '../support/real-server.js';

let real: RealServer;
let issuer: URL;
let rp: Server;
let rpOrigin: string;
let browser: Browser;
let config: client.Configuration;

beforeAll(async () => {
  rp = createServer((req, res) => {
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end(`<!doctype html><html lang="en"><title>RP</title><h1>${req.url?.startsWith('/signed-out') ? 'Signed out' : 'Back at the app'}</h1></html>`);
  });
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  rpOrigin = `http://127.0.0.1:${(rp.address() as AddressInfo).port}`;
  real = await startRealServer(inject('mongoUri'), 'oidc-browser');
  issuer = real.issuer;
  await real.running.service.stores.clients.create({
    clientId: 'browser-rp',
    name: 'Browser RP',
    type: 'public',
    firstParty: false,
    grantTypes: ['authorization_code', 'refresh_token'],
    scopes: ['openid', 'profile', 'email'],
    audiences: [],
    permissions: [],
    cookieMode: false,
    redirectUris: [`${rpOrigin}/callback`],
    postLogoutRedirectUris: [`${rpOrigin}/signed-out`],
    secretHash: undefined,
  });
  config = await client.discovery(issuer, 'browser-rp', undefined, client.None(), { execute: [client.allowInsecureRequests] });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await real?.stop();
  await new Promise((resolve) => rp?.close(resolve));
});

/** The hosted login (and consent, if asked) until the browser is back at the relying party. */
async function signInOnPages(page: Page): Promise<void> {
  await page.getByLabel('Email').fill(USER_EMAIL);
  await page.getByLabel('Password').fill(USER_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const allow = page.getByRole('button', { name: 'Allow' });
  await expect.poll(async () => page.url().startsWith(rpOrigin) || (await allow.count()) > 0, { timeout: 20_000 }).toBe(true);
  if (!page.url().startsWith(rpOrigin)) await Promise.all([page.waitForURL((u) => u.origin === rpOrigin), allow.click()]);
}

async function checkPage(page: Page, name: string): Promise<void> {
  await expectNoAxeViolations(page, name);
  await saveScreenshot(page, `oidc-${name}`);
}

describe('OpenID Connect in Chromium, judged by openid-client', { timeout: 90_000 }, () => {
  it('signs in, validates the ID token, reads userinfo, refreshes, then logs out through the confirmation page', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    try {
      const verifier = client.randomPKCECodeVerifier();
      const nonce = client.randomNonce();
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: `${rpOrigin}/callback`,
        scope: 'openid profile email',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        nonce,
        state,
      });
      await page.goto(url.href);
      await signInOnPages(page);

      const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
        pkceCodeVerifier: verifier,
        expectedNonce: nonce,
        expectedState: state,
        idTokenExpected: true,
      });
      const claims = tokens.claims()!;
      expect(claims).toMatchObject({ iss: issuer.origin, aud: 'browser-rp', nonce, email: USER_EMAIL, amr: ['pwd'] });
      expect(await client.fetchUserInfo(config, tokens.access_token, claims.sub)).toMatchObject({ sub: claims.sub, email: USER_EMAIL });
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.claims()).toMatchObject({ sub: claims.sub, sid: claims.sid, auth_time: claims.auth_time });

      // No hint: the user is asked first.
      await page.goto(client.buildEndSessionUrl(config, { client_id: 'browser-rp', post_logout_redirect_uri: `${rpOrigin}/signed-out`, state: 'bye' }).href);
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign out?');
      await checkPage(page, 'logout-confirm');
      await Promise.all([page.waitForURL((u) => u.origin === rpOrigin), page.getByRole('button', { name: 'Sign out' }).click()]);
      expect(page.url()).toBe(`${rpOrigin}/signed-out?state=bye`);
      await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

      // Signed out: nothing left to end, a notice page.
      await page.goto(new URL('/oauth/logout', issuer).href);
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Signed out');
      await checkPage(page, 'signed-out');
    } finally {
      await context.close();
    }
  });

  it('the confirmation page works with JavaScript off, and "Stay signed in" keeps the session', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    try {
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: `${rpOrigin}/callback`,
        scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      await page.goto(url.href);
      await signInOnPages(page);
      await page.goto(new URL('/oauth/logout?client_id=browser-rp', issuer).href);
      await page.getByRole('button', { name: 'Stay signed in' }).click();
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Still signed in');
      // axe-core runs as page script, which is off here; the same template passed it above ("Signed out").
      await saveScreenshot(page, 'oidc-still-signed-in');
      await page.goto(new URL('/oauth/logout?client_id=browser-rp', issuer).href);
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign out?');
    } finally {
      await context.close();
    }
  });
});
