/**
 * The authorization code flow end to end in a real Chromium: the authority (real Redis and
 * the harness's MongoDB), the example resource server and the example web app, the last
 * two as the child processes `npm run example:api` and `npm run example:web` start. A user
 * signs in through the hosted pages into the server app (a confidential client created
 * the way `client:create` does), then into the single-page app with SSO, from the
 * keyboard alone, and with JavaScript off. axe-core finds no WCAG 2.2 AA violation on any
 * hosted page met on the way; each is saved to test/artifacts/. Then, over plain HTTP, the
 * server app's state, iss and PKCE checks and the API's CORS.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/admin/accounts.js';
import { parseConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/main.js';
import { cryptoRandom } from '../../src/random.js';
import { CLIENT_SECRET, USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { expectNoAxeViolations, launchChromium, saveScreenshot } from '../support/browser.js';
import { FormBrowser } from '../support/hosted-pages.js';
import { captureLogs } from '../support/logs.js';
import { testDatabaseUri } from '../support/mongo.js';
import { freePort, spawnTracked, stopProcess } from '../support/processes.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const ROOT = join(import.meta.dirname, '..', '..');
let redis: TestRedis;
let authority: RunningServer;
let keysDir: string;
let issuer: string;
let web: string;
let api: string;
let webClientId: string;
const children: ChildProcess[] = [];
let browser: Browser;
const otherUsers = { keyboard: 'keyboard@example.com', nojs: 'no-script@example.com' };

/** Starts an example's server.ts as `npm run example:*` does, once it says it is listening. */
async function startExample(script: string, env: Record<string, string>): Promise<void> {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
  children.push(child);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (/listening on/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}:\n${output}`)));
  });
}

beforeAll(async () => {
  redis = await startTestRedis();
  keysDir = mkdtempSync(join(tmpdir(), 'code-flow-browser-keys-'));
  const [authorityPort, apiPort, webPort] = [await freePort(), await freePort(), await freePort()];
  issuer = `http://127.0.0.1:${authorityPort}`;
  web = `http://127.0.0.1:${webPort}`;
  api = `http://127.0.0.1:${apiPort}`;
  authority = await startServer(
    parseConfig({
      NODE_ENV: 'test',
      PORT: String(authorityPort),
      ISSUER: issuer,
      KEYS_DIR: keysDir,
      REDIS_URL: redis.url,
      MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'code-flow-browser'),
      REFRESH_TOKEN_SECRET: 's'.repeat(40),
      DEV_CLIENT_SECRET: CLIENT_SECRET,
      DEV_USER_PASSWORD: USER_PASSWORD,
      ARGON2_MEMORY_KIB: '8192',
      ARGON2_TIME_COST: '1',
      // Low, so that the throttled page is three wrong passwords away.
      LOGIN_RATE_LIMIT: '3/15m',
      // The single-page app calls the token endpoint from the web app's origin.
      CORS_ORIGINS: web,
    }),
    { logger: captureLogs().logger },
  );
  // What `npm run client:create -- --name web --grant authorization_code --grant refresh_token
  // --redirect-uri http://127.0.0.1/app/callback --scope openid --scope profile` does.
  const created = await createClient(
    { clients: authority.service.stores.clients, random: cryptoRandom },
    {
      name: 'web',
      grants: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'profile'],
      audiences: [],
      permissions: [],
      public: false,
      firstParty: false,
      cookieMode: false,
      redirectUris: ['http://127.0.0.1/app/callback'],
    },
  );
  webClientId = created.client.clientId;
  for (const email of Object.values(otherUsers)) {
    const res = await fetch(`${issuer}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: USER_PASSWORD }),
    });
    expect(res.status).toBe(201);
  }
  await startExample('examples/resource-server/server.ts', { ISSUER: issuer, PORT: String(apiPort), CORS_ORIGINS: web });
  await startExample('examples/web-app/server.ts', {
    ISSUER: issuer,
    API_URL: api,
    PORT: String(webPort),
    WEB_CLIENT_ID: webClientId,
    WEB_CLIENT_SECRET: created.clientSecret!,
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  for (const child of children) await stopProcess(child);
  await authority?.stop();
  await redis?.stop();
  rmSync(keysDir, { recursive: true, force: true });
});

// Expressions run in the page are strings: the project's TypeScript has no DOM types.

/** A page in a fresh browser profile; `problems` collects CSP refusals and script errors. */
async function newPage(options: { javaScriptEnabled?: boolean } = {}): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ javaScriptEnabled: options.javaScriptEnabled ?? true, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  // Chromium logs each refused load as a console error naming the Content Security Policy.
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return { page, problems };
}

const onAuthority = (path: string) => (url: URL) => url.origin === issuer && url.pathname === path;

/** A hosted page: no WCAG 2.2 AA violation, and a screenshot for a human. */
async function checkPage(page: Page, name: string): Promise<void> {
  await expectNoAxeViolations(page, name);
  await saveScreenshot(page, `code-flow-${name}`);
}

async function apiAnswer(page: Page): Promise<Record<string, unknown>> {
  const text = (await page.locator('#api').textContent()) ?? '';
  return JSON.parse(text.slice(text.indexOf('{'))) as Record<string, unknown>;
}

// A journey crosses several pages and runs axe-core on each: on a loaded 2-core CI machine
// one took longer than the suite's 20 s default, so each journey gets 90 s.
const JOURNEY = { timeout: 90_000 };

describe('the example web app signing in through the hosted pages, in Chromium', JOURNEY, () => {
  it("server app: login (a wrong password first), consent, back signed in with the API's answer; then SSO into the SPA asks no password", async () => {
    const { page, problems } = await newPage();
    try {
      await page.goto(`${web}/app`);
      await Promise.all([page.waitForURL(onAuthority('/oauth/authorize')), page.getByRole('link', { name: 'Sign in' }).click()]);
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
      await checkPage(page, 'login');

      await page.getByLabel('Email').fill(USER_EMAIL);
      await page.getByLabel('Password').fill('not the password');
      const wrong = page.waitForResponse((res) => res.url() === `${issuer}/oauth/authorize/login`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      expect((await wrong).status()).toBe(400);
      await expect(page.getByRole('alert').textContent()).resolves.toContain('The email address or password is not right.');
      await checkPage(page, 'login-wrong-password');

      await page.getByLabel('Password').fill(USER_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      await expect(page.locator('main').textContent()).resolves.toContain('web');
      await checkPage(page, 'consent');

      await Promise.all([page.waitForURL(`${web}/app`), page.getByRole('button', { name: 'Allow' }).click()]);
      await expect(page.locator('#user').textContent()).resolves.toBe(`Signed in as ${USER_EMAIL}`);
      expect(await apiAnswer(page)).toMatchObject({ client_id: webClientId, email: USER_EMAIL, scope: ['openid', 'profile'], roles: ['admin'] });
      // Signed in with OpenID Connect: the ID token's claims, validated by the app (nonce included).
      const idToken = JSON.parse((await page.locator('#id-token').textContent())!) as Record<string, unknown>;
      expect(idToken).toMatchObject({ iss: issuer, aud: webClientId, amr: ['pwd'] });
      expect(idToken.nonce).toBeTypeOf('string');
      await expectNoAxeViolations(page, 'the server app, signed in');
      await saveScreenshot(page, 'code-flow-server-app-signed-in');

      // The SPA is another client: the authority knows this browser and asks only for consent.
      await page.goto(`${web}/spa`);
      await Promise.all([page.waitForURL(onAuthority('/oauth/authorize')), page.getByRole('button', { name: 'Sign in' }).click()]);
      expect(await page.locator('input[name="password"]').count()).toBe(0);
      await expect(page.locator('main').textContent()).resolves.toContain('Demo single-page app');
      await checkPage(page, 'consent-sso');
      await Promise.all([page.waitForURL(`${web}/spa`), page.getByRole('button', { name: 'Allow' }).click()]);
      await expect.poll(() => page.locator('#user').textContent()).toBe(`Signed in as ${USER_EMAIL}`);
      expect(await apiAnswer(page)).toMatchObject({ client_id: 'demo-spa', email: USER_EMAIL, scope: ['openid', 'profile'] });
      // The code left the address bar (and the history entry) at once.
      expect(page.url()).toBe(`${web}/spa`);
      await saveScreenshot(page, 'code-flow-spa-signed-in');
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  });

  it('signs in from the keyboard alone: Tab, typing and Enter, no click anywhere', async () => {
    const { page, problems } = await newPage();
    try {
      await page.goto(`${web}/app`);
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement?.textContent')).toBe('Sign in');
      await Promise.all([page.waitForURL(onAuthority('/oauth/authorize')), page.keyboard.press('Enter')]);
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement?.id')).toBe('email');
      await page.keyboard.type(otherUsers.keyboard);
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement?.id')).toBe('password');
      await page.keyboard.type(USER_PASSWORD);
      await page.keyboard.press('Enter');
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      // Tab to Allow: it is the first control of the consent form.
      for (let tabs = 0; tabs < 10 && (await page.evaluate('document.activeElement?.value')) !== 'allow'; tabs++) await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement?.value')).toBe('allow');
      await Promise.all([page.waitForURL(`${web}/app`), page.keyboard.press('Enter')]);
      await expect(page.locator('#user').textContent()).resolves.toBe(`Signed in as ${otherUsers.keyboard}`);
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  });

  it('works with JavaScript disabled: login and consent are plain form posts, back to the server app signed in', async () => {
    const { page } = await newPage({ javaScriptEnabled: false });
    try {
      await page.goto(`${web}/app`);
      await Promise.all([page.waitForURL(onAuthority('/oauth/authorize')), page.getByRole('link', { name: 'Sign in' }).click()]);
      await page.getByLabel('Email').fill(otherUsers.nojs);
      await page.getByLabel('Password').fill(USER_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await Promise.all([page.waitForURL(`${web}/app`), page.getByRole('button', { name: 'Allow' }).click()]);
      await expect(page.locator('#user').textContent()).resolves.toBe(`Signed in as ${otherUsers.nojs}`);
      expect(await apiAnswer(page)).toMatchObject({ client_id: webClientId, email: otherUsers.nojs });
    } finally {
      await page.context().close();
    }
  });

  it('SPA: a denied consent comes back as access_denied, and the SPA is not signed in', async () => {
    const { page, problems } = await newPage();
    try {
      await page.goto(`${web}/spa`);
      await Promise.all([page.waitForURL(onAuthority('/oauth/authorize')), page.getByRole('button', { name: 'Sign in' }).click()]);
      await page.getByLabel('Email').fill(otherUsers.keyboard);
      await page.getByLabel('Password').fill(USER_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await Promise.all([page.waitForURL(`${web}/spa`), page.getByRole('button', { name: 'Deny' }).click()]);
      await expect.poll(() => page.locator('#user').textContent()).toMatch(/^Sign-in failed: access_denied/);
      await expect(page.locator('#api').textContent()).resolves.toBe('');
      expect(problems).toEqual([]);
    } finally {
      await page.context().close();
    }
  });

  it('shows the throttled login page after too many wrong passwords', async () => {
    const { page } = await newPage();
    try {
      await page.goto(`${web}/app`);
      await Promise.all([page.waitForURL(onAuthority('/oauth/authorize')), page.getByRole('link', { name: 'Sign in' }).click()]);
      const statuses: number[] = [];
      for (let attempt = 0; attempt < 4; attempt++) {
        await page.getByLabel('Email').fill('locked-out@example.com');
        await page.getByLabel('Password').fill(`wrong password ${attempt}`);
        const answer = page.waitForResponse((res) => res.url() === `${issuer}/oauth/authorize/login`);
        await page.getByRole('button', { name: 'Sign in' }).click();
        statuses.push((await answer).status());
      }
      // LOGIN_RATE_LIMIT 3/15m: three wrong passwords are answered, the fourth is refused.
      expect(statuses).toEqual([400, 400, 400, 429]);
      await expect(page.getByRole('alert').textContent()).resolves.toMatch(/too many/i);
      await checkPage(page, 'login-throttled');
    } finally {
      await page.context().close();
    }
  });

  it('shows an error page, and never redirects, for a redirect URI the client did not register', async () => {
    const { page } = await newPage();
    try {
      const url = new URL('/oauth/authorize', issuer);
      url.search = new URLSearchParams({
        client_id: 'demo-spa',
        redirect_uri: 'https://evil.example/callback',
        response_type: 'code',
        scope: 'profile',
        state: 'xyz',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      }).toString();
      const response = await page.goto(url.href);
      expect(response?.status()).toBe(400);
      expect(page.url()).toBe(url.href);
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('This sign-in cannot continue');
      await checkPage(page, 'error-unregistered-redirect-uri');
    } finally {
      await page.context().close();
    }
  });
});

/** Starts a sign-in at the server app and completes it at the authority as a form-posting browser: where it is sent back to. */
async function signInThroughApp(): Promise<{ cookie: string; callback: URL }> {
  const start = await fetch(`${web}/app/login`, { redirect: 'manual' });
  const cookie = start.headers.get('set-cookie')!.split(';')[0]!;
  const user = new FormBrowser(issuer);
  let page = await user.get(start.headers.get('location')!);
  if (page.html.includes('name="password"')) page = await user.submit(page, { email: USER_EMAIL, password: USER_PASSWORD });
  if (page.html.includes('name="decision"')) page = await user.submit(page, { decision: 'allow' });
  return { cookie, callback: new URL(page.location!) };
}

const callback = (url: URL, cookie: string | undefined) =>
  fetch(`${web}${url.pathname}${url.search}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });

describe('the example server app does not weaken the flow', () => {
  it('asks for S256 PKCE, with the state and verifier in an HttpOnly cookie', async () => {
    const start = await fetch(`${web}/app/login`, { redirect: 'manual' });
    expect(start.status).toBe(303);
    const authorize = new URL(start.headers.get('location')!);
    expect(authorize.origin + authorize.pathname).toBe(`${issuer}/oauth/authorize`);
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
      client_id: webClientId,
      response_type: 'code',
      code_challenge_method: 'S256',
      redirect_uri: `${web}/app/callback`,
    });
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const state = authorize.searchParams.get('state')!;
    // OpenID Connect: the nonce sent is kept with the state and the verifier.
    const nonce = authorize.searchParams.get('nonce')!;
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(start.headers.get('set-cookie')).toMatch(new RegExp(`^web_tx=${state}\\.[A-Za-z0-9_-]{43}\\.${nonce}; Path=/app; HttpOnly; SameSite=Lax`));
  });

  it("refuses another sign-in's code and state in this browser (login CSRF) before using the code", async () => {
    const attacker = await signInThroughApp();
    const victim = (await fetch(`${web}/app/login`, { redirect: 'manual' })).headers.get('set-cookie')!.split(';')[0]!;
    const refused = await callback(attacker.callback, victim);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('Sign-in failed');
    expect(refused.headers.getSetCookie().join()).not.toContain('web_session=');
    // The code was not even tried (a try with the victim's verifier would have spent it).
    const own = await callback(attacker.callback, attacker.cookie);
    expect(own.status).toBe(303);
    expect(own.headers.getSetCookie().join()).toContain('web_session=');
  });

  it('refuses a changed or missing iss, and a callback without its cookie, before using the code', async () => {
    const { cookie, callback: url } = await signInThroughApp();
    expect(url.searchParams.get('iss')).toBe(issuer);
    for (const iss of ['https://evil.example', undefined]) {
      const forged = new URL(url);
      if (iss) forged.searchParams.set('iss', iss);
      else forged.searchParams.delete('iss');
      expect((await callback(forged, cookie)).status, `iss ${iss}`).toBe(400);
    }
    expect((await callback(url, undefined)).status).toBe(400);
    expect((await callback(url, cookie)).status).toBe(303);
  });
});

describe("the example API's CORS", () => {
  it("lets the web app's origin send a Bearer token, without credentials, and no other origin", async () => {
    const preflight = (origin: string) =>
      fetch(`${api}/me`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    const allowed = await preflight(web);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(web);
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/authorization/i);
    expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
    const other = await preflight('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
