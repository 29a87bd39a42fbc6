/**
 * The hosted pages in a real Chromium, served with their real headers (CSP included) by a
 * bare node:http server, not the app: axe-core finds no WCAG 2.2 AA violation on any page
 * at phone and desktop sizes, sign-in works from the keyboard alone and without
 * JavaScript, the posted field names are the contract's, and hostile reflected values stay
 * text. Screenshots go to test/artifacts/.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPageRenderer, pageHeaders, pageStylesheet, PAGES_STYLESHEET_PATH } from '../../src/pages/index.js';
import { expectNoAxeViolations, launchChromium, saveScreenshot } from '../support/browser.js';

const HOSTILE = `"'><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">`;
const renderer = createPageRenderer({ productName: 'Acme ID' });
const login = { action: '/submit', csrfToken: 'csrf-token-123' };

const PAGES: Record<string, { status: number; html: string }> = {
  '/login': { status: 200, html: renderer.login({ ...login, clientName: 'Demo SPA' }) },
  '/login-error': {
    status: 200,
    html: renderer.login({ ...login, email: 'demo@example.com', error: { field: 'password', message: 'Wrong email or password.' } }),
  },
  '/login-throttled': { status: 429, html: renderer.login({ ...login, email: 'demo@example.com', throttle: { retryAfterMs: 14 * 60_000 } }) },
  '/login-hostile': { status: 200, html: renderer.login({ ...login, email: HOSTILE, clientName: HOSTILE }) },
  '/consent': {
    status: 200,
    html: renderer.consent({
      action: '/submit',
      csrfToken: 'csrf-token-123',
      clientName: 'Demo SPA',
      scopes: ['profile', 'email', 'offline_access'],
      userEmail: 'demo@example.com',
    }),
  },
  '/error': {
    status: 400,
    html: renderer.error({ title: 'Unknown application', description: 'The application that sent you here is not registered with Acme ID.' }),
  },
};

let server: Server;
let origin: string;
let browser: Browser;
const posted: URLSearchParams[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (request.method === 'POST' && path === '/submit') {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        posted.push(new URLSearchParams(body));
        response.writeHead(200, pageHeaders()).end(renderer.error({ title: 'Received', description: 'Form received.' }));
      });
      return;
    }
    if (path === PAGES_STYLESHEET_PATH) {
      response.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(pageStylesheet());
      return;
    }
    const page = PAGES[path];
    if (!page) return void response.writeHead(404).end();
    response.writeHead(page.status, pageHeaders()).end(page.html);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  server?.close();
});

// Expressions run in the page are strings: the project's TypeScript has no DOM types.

/** A page in a fresh context; fails the test on any CSP report or page error. */
async function open(
  path: string,
  options: { javaScriptEnabled?: boolean; viewport?: { width: number; height: number } } = {},
): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({
    javaScriptEnabled: options.javaScriptEnabled ?? true,
    viewport: options.viewport ?? { width: 1280, height: 800 },
  });
  const page = await context.newPage();
  const problems: string[] = [];
  // Chromium logs each refused load as a console error naming the Content Security Policy.
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  const response = await page.goto(`${origin}${path}`);
  expect(response?.status()).toBe(PAGES[path]?.status ?? 200);
  return { page, problems };
}

const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 375, height: 667 } };

// axe-core in Chromium on a loaded 2-core CI machine can take most of the 20 s default.
describe('hosted pages in Chromium', { timeout: 90_000 }, () => {
  for (const path of Object.keys(PAGES)) {
    for (const [size, viewport] of Object.entries(VIEWPORTS)) {
      it(`${path} (${size}): no WCAG 2.2 AA violation, styled under its CSP, nothing blocked`, async () => {
        const { page, problems } = await open(path, { viewport });
        try {
          await expectNoAxeViolations(page, `${path} (${size})`);
          // The stylesheet loaded under the page's own CSP: the custom properties apply.
          expect(await page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")).toBe('rgb(255, 255, 255)');
          // Nothing wider than a phone: no horizontal scrolling.
          expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
          await saveScreenshot(page, `${path.slice(1)}-${size}`);
          expect(problems).toEqual([]);
        } finally {
          await page.context().close();
        }
      });
    }
  }

  it('signs in with the keyboard alone: Tab to email, type, Tab to password, type, Enter posts email, password and csrf', async () => {
    const { page } = await open('/login');
    try {
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement?.id')).toBe('email');
      // Focus is visible: the focused field draws an outline.
      expect(await page.evaluate("getComputedStyle(document.querySelector('#email')).outlineStyle")).not.toBe('none');
      await page.keyboard.type('demo@example.com');
      await page.keyboard.press('Tab');
      expect(await page.evaluate('document.activeElement?.id')).toBe('password');
      await page.keyboard.type('correct horse');
      const before = posted.length;
      await Promise.all([page.waitForURL(`${origin}/submit`), page.keyboard.press('Enter')]);
      expect(posted.length).toBe(before + 1);
      const body = posted.at(-1)!;
      expect([...body.keys()]).toEqual(['csrf', 'email', 'password']);
      expect(Object.fromEntries(body)).toEqual({ csrf: 'csrf-token-123', email: 'demo@example.com', password: 'correct horse' });
    } finally {
      await page.context().close();
    }
  });

  it('works with JavaScript disabled: sign in, then deny consent, by plain form posts', async () => {
    const { page } = await open('/login', { javaScriptEnabled: false });
    try {
      await page.locator('#email').fill('demo@example.com');
      await page.locator('#password').fill('pw');
      await Promise.all([page.waitForURL(`${origin}/submit`), page.getByRole('button', { name: 'Sign in' }).click()]);
      expect(Object.fromEntries(posted.at(-1)!)).toEqual({ csrf: 'csrf-token-123', email: 'demo@example.com', password: 'pw' });
      await page.goto(`${origin}/consent`);
      await Promise.all([page.waitForURL(`${origin}/submit`), page.getByRole('button', { name: 'Deny' }).click()]);
      expect(Object.fromEntries(posted.at(-1)!)).toEqual({ csrf: 'csrf-token-123', decision: 'deny' });
      await page.goto(`${origin}/consent`);
      await Promise.all([page.waitForURL(`${origin}/submit`), page.getByRole('button', { name: 'Allow' }).click()]);
      expect(Object.fromEntries(posted.at(-1)!)).toEqual({ csrf: 'csrf-token-123', decision: 'allow' });
    } finally {
      await page.context().close();
    }
  });

  it('announces a sign-in error and ties it to the password field', async () => {
    const { page } = await open('/login-error');
    try {
      await expect(page.getByRole('alert').textContent()).resolves.toContain('Wrong email or password.');
      const password = page.getByLabel('Password');
      expect(await password.getAttribute('aria-invalid')).toBe('true');
      // The accessible description of the field is its error, as a screen reader reads it.
      const description = await page.evaluate("document.getElementById(document.querySelector('#password').getAttribute('aria-describedby'))?.textContent");
      expect(description).toBe('Wrong email or password.');
    } finally {
      await page.context().close();
    }
  });

  it('keeps hostile reflected values (login_hint, client name) as text: no script runs, no element is injected', async () => {
    const { page } = await open('/login-hostile');
    try {
      expect(await page.locator('#email').inputValue()).toBe(HOSTILE);
      expect(await page.locator('.lead strong').textContent()).toBe(HOSTILE);
      expect(await page.locator('script, img').count()).toBe(0);
      expect(await page.evaluate('window.__pwned')).toBeUndefined();
    } finally {
      await page.context().close();
    }
  });
});
