/**
 * The account pages (forgot password, reset password, confirm an address) served by the real
 * app, in a real Chromium: a password reset from the forgot form to the new password with
 * axe-core (WCAG 2.2 AA) on every state on the way and no CSP report, and an address
 * confirmed with JavaScript off (axe itself needs JavaScript, so that run is not audited).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';
import { expectNoAxeViolations, launchChromium, saveScreenshot } from '../support/browser.js';
import { lastMail } from '../support/mailbox.js';

let service: TestService;
let server: Server;
let origin: string;
let browser: Browser;

beforeAll(async () => {
  service = await startTestService();
  server = createServer(service.callback);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  await service?.close();
});

const pagePath = (link: string) => {
  const url = new URL(link);
  return `${origin}${url.pathname}${url.search}`;
};

async function checked(page: Page, problems: string[], name: string): Promise<void> {
  await expectNoAxeViolations(page, name);
  await saveScreenshot(page, `account-${name}`);
  expect(problems).toEqual([]);
}

describe('account pages in Chromium', { timeout: 90_000 }, () => {
  it('resets a password from the forgot form to the new password, each state free of WCAG 2.2 AA violations', async () => {
    await request(service.callback).post('/auth/register').send({ email: 'chromium@example.com', password: 'a long passphrase for tests' }).expect(201);
    const context = await browser.newContext({ viewport: { width: 375, height: 667 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) problems.push(message.text());
    });
    try {
      // The confirmation page of a verification link, audited on the way.
      const verifyLink = (await lastMail(service, 'chromium@example.com', 'verify-email')).link!;
      await page.goto(pagePath(verifyLink));
      await checked(page, problems, 'verify');
      await page.goto(`${origin}/account/forgot-password`);
      await checked(page, problems, 'forgot');
      // A bad address: the error is tied to the field.
      await page.fill('#email', 'not an address');
      await Promise.all([page.waitForLoadState('load'), page.press('#email', 'Enter')]);
      expect(await page.getAttribute('#email', 'aria-invalid')).toBe('true');
      await checked(page, problems, 'forgot-error');
      await page.fill('#email', 'chromium@example.com');
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      expect(await page.textContent('h1')).toBe('Check your inbox');
      await checked(page, problems, 'forgot-sent');

      const link = (await lastMail(service, 'chromium@example.com', 'password-reset')).link!;
      await page.goto(pagePath(link));
      await checked(page, problems, 'reset');
      await page.fill('#new_password', 'short');
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      expect(await page.getAttribute('#new_password', 'aria-describedby')).toBe('new_password-hint new_password-error');
      await checked(page, problems, 'reset-error');
      await page.fill('#new_password', 'a brand new long passphrase');
      await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
      expect(await page.textContent('h1')).toBe('Your password was changed');
      await checked(page, problems, 'reset-done');

      await page.goto(pagePath(link));
      expect(await page.textContent('h1')).toBe('Choose a new password');
      await checked(page, problems, 'reset-dead-link');
      await request(service.callback).post('/auth/login').send({ email: 'chromium@example.com', password: 'a brand new long passphrase' }).expect(200);
    } finally {
      await context.close();
    }
  });

  it('confirms an address from the verification link with JavaScript off, from the keyboard', async () => {
    await request(service.callback).post('/auth/register').send({ email: 'verify-chromium@example.com', password: 'a long passphrase for tests' }).expect(201);
    const link = (await lastMail(service, 'verify-chromium@example.com', 'verify-email')).link!;
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) problems.push(message.text());
    });
    try {
      await page.goto(pagePath(link));
      await page.keyboard.press('Tab');
      await Promise.all([page.waitForLoadState('load'), page.keyboard.press('Enter')]);
      expect(await page.textContent('.notice')).toContain('verify-chromium@example.com is confirmed');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
