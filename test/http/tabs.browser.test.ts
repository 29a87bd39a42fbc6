/**
 * Two tabs of one browser, signed in through the cookie-mode API, refresh at the same
 * instant with the one HttpOnly refresh cookie they share (issue 18 item 4): both get a
 * working session (the same successor, each its own access token), and both stay signed
 * in afterwards. Real Chromium against the real server (Redis, MongoDB).
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { launchChromium } from '../support/browser.js';
import { startRealServer, type RealServer } from '../support/real-server.js';

let real: RealServer;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  real = await startRealServer(inject('mongoUri'), 'tabs');
  browser = await launchChromium();
  context = await browser.newContext();
}, 60_000);
afterAll(async () => {
  await context?.close();
  await browser?.close();
  await real?.stop();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** POSTs JSON from the page itself (same origin: the cookie and Origin go as a browser sends them). */
function post(page: Page, path: string, body: unknown, startAt = 0): Promise<Answer> {
  return page.evaluate(
    async ({ path, body, startAt }) => {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
      const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
    { path, body, startAt },
  );
}

async function me(page: Page, accessToken: unknown): Promise<number> {
  return page.evaluate(async (token) => (await fetch('/auth/me', { headers: { authorization: `Bearer ${String(token)}` } })).status, accessToken);
}

describe('two tabs refreshing at once (cookie mode)', () => {
  it('both stay signed in', async () => {
    const [one, two] = [await context.newPage(), await context.newPage()];
    // A blank page of the authority's origin (the server's own pages forbid scripts to connect): the app of the tabs.
    await context.route(new URL('/tab', real.issuer).href, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>tab</title>' }),
    );
    for (const page of [one, two]) await page.goto(new URL('/tab', real.issuer).href);
    const login = await post(one, '/auth/login?cookie=1', { email: USER_EMAIL, password: USER_PASSWORD });
    expect(login.status).toBe(200);
    expect(login.body.refresh_token).toBeUndefined();

    // The same instant in both tabs, with the one cookie they share.
    const startAt = Date.now() + 300;
    const [first, second] = await Promise.all([post(one, '/auth/refresh', {}, startAt), post(two, '/auth/refresh', {}, startAt)]);
    expect([first.status, second.status], JSON.stringify([first.body.error_description, second.body.error_description])).toEqual([200, 200]);
    expect(first.body.access_token).not.toBe(second.body.access_token);
    expect(await me(one, first.body.access_token)).toBe(200);
    expect(await me(two, second.body.access_token)).toBe(200);

    // And again, one after the other: the session lives on in both.
    for (const page of [two, one]) {
      const next = await post(page, '/auth/refresh', {});
      expect(next.status, JSON.stringify(next.body)).toBe(200);
      expect(await me(page, next.body.access_token)).toBe(200);
    }
  }, 60_000);
});
