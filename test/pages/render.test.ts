/**
 * The hosted pages' renderer and headers without a browser: escaping, the contract's
 * field names, errors tied to their fields, the CSP. The browser checks (axe, keyboard,
 * no JavaScript) are in pages.browser.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy, createPageRenderer, pageHeaders, waitText } from '../../src/pages/index.js';

const pages = createPageRenderer({ productName: 'Acme ID' });
const HOSTILE = `"'><script>alert(1)</script>`;

describe('hosted pages', () => {
  it('login: the contract fields, a hidden csrf token, labels tied to inputs, no script or inline style', () => {
    const html = pages.login({ action: '/oauth/login?tx=abc', csrfToken: 'csrf-1' });
    expect(html).toMatch(/<input id="email" name="email" type="email" autocomplete="username" required>/);
    expect(html).toMatch(/<input id="password" name="password" type="password" autocomplete="current-password" required>/);
    expect(html).toContain('<input type="hidden" name="csrf" value="csrf-1">');
    expect(html).toContain('<label for="email">');
    expect(html).toContain('<label for="password">');
    expect(html).toContain('<form method="post" action="/oauth/login?tx=abc"');
    expect(html).toContain('<html lang="en">');
    expect(html).not.toMatch(/<script|style=|<style|\son\w+=/i);
    expect(html).not.toContain('role="alert"');
  });

  it('escapes every reflected value: login_hint, client name, csrf token, error and page texts', () => {
    const login = pages.login({ action: '/l', csrfToken: HOSTILE, email: HOSTILE, clientName: HOSTILE, error: { field: 'email', message: HOSTILE } });
    const consent = pages.consent({ action: '/c', csrfToken: 't', clientName: HOSTILE, scopes: [HOSTILE], userEmail: HOSTILE });
    const error = pages.error({ title: HOSTILE, description: HOSTILE });
    const logout = pages.logout({ action: '/o', csrfToken: HOSTILE, clientName: HOSTILE });
    const notice = pages.notice({ title: HOSTILE, message: HOSTILE });
    for (const html of [login, consent, error, logout, notice]) {
      expect(html).not.toContain('<script>');
      expect(html).toContain('&quot;&#39;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    }
  });

  it('ties a field error to its input (aria-invalid, aria-describedby) and announces it', () => {
    const html = pages.login({ action: '/l', csrfToken: 't', email: 'a@example.com', error: { field: 'password', message: 'Wrong email or password.' } });
    expect(html).toContain('<div class="alert" id="form-error" role="alert">');
    expect(html).toMatch(/id="password"[^>]*aria-describedby="password-error" aria-invalid="true">/);
    expect(html).toContain('<p class="field-error" id="password-error">Wrong email or password.</p>');
    expect(html).toMatch(/id="email"[^>]*value="a@example.com">/);
    const formWide = pages.login({ action: '/l', csrfToken: 't', error: { message: 'Something went wrong.' } });
    expect(formWide).toMatch(/id="email"[^>]*aria-describedby="form-error">/);
    expect(formWide).not.toContain('aria-invalid');
  });

  it('tells a throttled user how long to wait, rounded up', () => {
    const html = pages.login({ action: '/l', csrfToken: 't', throttle: { retryAfterMs: 14 * 60_000 + 1 } });
    expect(html).toContain('Please wait 15 minutes before trying again.');
    expect(waitText(0)).toBe('1 second');
    expect(waitText(45_500)).toBe('46 seconds');
    expect(waitText(60_000)).toBe('1 minute');
  });

  it('consent: the client, each scope by its description, allow and deny as decision values', () => {
    const html = pages.consent({ action: '/oauth/consent', csrfToken: 'c', clientName: 'Demo SPA', scopes: ['profile', 'email', 'custom:read'] });
    expect(html).toContain('<strong>Demo SPA</strong>');
    expect(html).toContain('<li>See your name</li>');
    expect(html).toContain('<li>See your email address</li>');
    expect(html).toContain('<li>custom:read</li>');
    expect(html).toContain('name="decision" value="allow"');
    expect(html).toContain('name="decision" value="deny"');
    expect(html).toContain('<input type="hidden" name="csrf" value="c">');
  });

  it('refuses a logo or stylesheet from another origin and a form action that is not http(s)', () => {
    expect(() => createPageRenderer({ productName: 'A', logoUrl: '//evil.example/x.png' })).toThrow(TypeError);
    expect(() => createPageRenderer({ productName: 'A', stylesheetUrl: 'https://cdn.example/x.css' })).toThrow(TypeError);
    expect(() => createPageRenderer({ productName: '' })).toThrow(TypeError);
    expect(() => pages.login({ action: 'javascript:alert(1)', csrfToken: 't' })).toThrow(TypeError);
    const branded = createPageRenderer({ productName: 'Acme', logoUrl: '/branding/logo.svg', stylesheetUrl: '/branding/theme.css' });
    const html = branded.error({ title: 'Oops', description: 'd' });
    expect(html).toContain('<img class="brand-logo" src="/branding/logo.svg" alt="Acme">');
    expect(html).toContain('<link rel="stylesheet" href="/branding/theme.css">');
  });

  it('sends the CSP of the issue with the redirect origin in form-action, and refuses anything but an origin', () => {
    expect(contentSecurityPolicy(['http://127.0.0.1:5173', 'http://127.0.0.1:5173'])).toBe(
      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' http://127.0.0.1:5173; frame-ancestors 'none'; base-uri 'none'",
    );
    for (const bad of ['https://app.example/callback', "https://a.example; script-src 'unsafe-inline'", 'javascript:1', '*']) {
      expect(() => contentSecurityPolicy([bad])).toThrow(TypeError);
    }
    expect(pageHeaders()).toMatchObject({
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
  });
});
