/**
 * Email verification over HTTP on the embedded stores: the mail at registration, the token's
 * rules (256 bits, hashed, single use, 24 h, bound to user and address, newest only), the
 * JSON endpoint and the hosted page, and REQUIRE_VERIFIED_EMAIL at login.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { startTestService, type TestService } from '../support/app.js';
import { FormBrowser, readForm } from '../support/hosted-pages.js';
import { lastMail, mailbox, tokenOf } from '../support/mailbox.js';

const PASSWORD = 'a long passphrase for tests';

async function register(service: TestService, email: string): Promise<string> {
  const response = await request(service.callback).post('/auth/register').send({ email, password: PASSWORD }).expect(201);
  return response.body.user.id as string;
}

function login(service: TestService, email: string, password = PASSWORD) {
  return request(service.callback).post('/auth/login').send({ email, password });
}

describe('email verification', () => {
  let service: TestService;
  const clock = manualClock(Date.UTC(2026, 5, 1));
  beforeAll(async () => {
    service = await startTestService({}, { clock });
  });
  afterAll(async () => {
    await service.close();
  });

  it('mails a link at registration; the token is 256 bits and only its hash is stored', async () => {
    const id = await register(service, 'ver1@example.com');
    const mail = await lastMail(service, 'ver1@example.com', 'verify-email');
    expect(mail.link).toMatch(/^http:\/\/auth\.test\/account\/verify-email\?token=/);
    const token = tokenOf(mail);
    const [userId, secret] = token.split('.');
    expect(userId).toBe(id);
    expect(Buffer.from(secret!, 'base64url')).toHaveLength(32);
    const stored = await service.stores.accountTokens.get('email-verify', id);
    expect(stored!.hash).toBe(createHash('sha256').update(secret!).digest('base64url'));
    expect(JSON.stringify(stored)).not.toContain(secret);
  });

  it('POST /auth/email/verify confirms once; /auth/me shows email_verified', async () => {
    await register(service, 'ver2@example.com');
    const token = tokenOf(await lastMail(service, 'ver2@example.com', 'verify-email'));
    const tokens = (await login(service, 'ver2@example.com').expect(200)).body;
    const me = await request(service.callback).get('/auth/me').set('Authorization', `Bearer ${tokens.access_token}`).expect(200);
    expect(me.body.user.email_verified).toBe(false);
    const verified = await request(service.callback).post('/auth/email/verify').send({ token }).expect(200);
    expect(verified.body.user).toMatchObject({ email: 'ver2@example.com', email_verified: true });
    const again = await request(service.callback).post('/auth/email/verify').send({ token }).expect(400);
    expect(again.body.error).toBe('invalid_grant');
    const after = await request(service.callback).get('/auth/me').set('Authorization', `Bearer ${tokens.access_token}`).expect(200);
    expect(after.body.user.email_verified).toBe(true);
  });

  it('refuses a token after 24 hours', async () => {
    await register(service, 'ver3@example.com');
    const token = tokenOf(await lastMail(service, 'ver3@example.com', 'verify-email'));
    clock.advance(24 * 3600_000);
    await request(service.callback).post('/auth/email/verify').send({ token }).expect(400);
  });

  it('refuses an older token once a newer one was sent (resend), and a token moved to another user', async () => {
    const first = await register(service, 'ver4@example.com');
    const second = await register(service, 'ver5@example.com');
    const old = tokenOf(await lastMail(service, 'ver4@example.com', 'verify-email'));
    const resend = await request(service.callback).post('/auth/email/verify/resend').send({ email: 'ver4@example.com' }).expect(202);
    const unknown = await request(service.callback).post('/auth/email/verify/resend').send({ email: 'nobody@example.com' }).expect(202);
    expect(unknown.body).toEqual(resend.body);
    const fresh = tokenOf(await lastMail(service, 'ver4@example.com', 'verify-email'));
    expect(fresh).not.toBe(old);
    await request(service.callback).post('/auth/email/verify').send({ token: old }).expect(400);
    // The same secret under the other user's id opens nothing.
    const moved = `${second}.${fresh.split('.')[1]}`;
    await request(service.callback).post('/auth/email/verify').send({ token: moved }).expect(400);
    await request(service.callback).post('/auth/email/verify').send({ token: fresh }).expect(200);
    expect(first).not.toBe(second);
  });

  it('sends nothing on resend for a verified or unknown address', async () => {
    const before = (await mailbox(service)).length;
    await request(service.callback).post('/auth/email/verify/resend').send({ email: 'ver2@example.com' }).expect(202);
    await request(service.callback).post('/auth/email/verify/resend').send({ email: 'unknown@example.com' }).expect(202);
    expect(await mailbox(service)).toHaveLength(before);
  });

  it('answers malformed tokens and bodies with 400 in the JSON format', async () => {
    for (const token of ['', 'x', 'a.b', `${'a'.repeat(24)}.${'b'.repeat(43)}`, 'a'.repeat(500)]) {
      const response = await request(service.callback).post('/auth/email/verify').send({ token });
      expect(response.status).toBe(400);
      expect(response.body.error).toMatch(/^invalid_(request|grant)$/);
    }
    await request(service.callback).post('/auth/email/verify/resend').send({ email: 'not an address' }).expect(400);
  });
});

describe('the hosted verification page', () => {
  let service: TestService;
  let server: Server;
  let origin: string;
  beforeAll(async () => {
    service = await startTestService();
    server = createServer(service.callback);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await service.close();
  });

  const pagePath = (link: string) => {
    const url = new URL(link);
    return `${origin}${url.pathname}${url.search}`;
  };

  it('opens with a form (a GET uses nothing up), confirms on submit, then says the link is dead', async () => {
    await register(service, 'page1@example.com');
    const link = (await lastMail(service, 'page1@example.com', 'verify-email')).link!;
    const browser = new FormBrowser(origin);
    const page = await browser.get(pagePath(link));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.html).toContain('Confirm my email address');
    await browser.get(pagePath(link));
    const done = await browser.submit(page, { token: tokenOf({ link } as never) });
    expect(done.status).toBe(200);
    expect(done.html).toContain('page1@example.com is confirmed');
    const again = await browser.get(pagePath(link));
    expect(again.status).toBe(400);
    expect(again.html).toContain('not valid any more');
  });

  it('refuses a post without this browser’s CSRF token', async () => {
    await register(service, 'page2@example.com');
    const link = (await lastMail(service, 'page2@example.com', 'verify-email')).link!;
    const page = await new FormBrowser(origin).get(pagePath(link));
    const other = new FormBrowser(origin);
    await other.get(pagePath(link));
    const { action, csrf } = readForm(page.html);
    const refused = await other.post(action, { csrf, token: tokenOf({ link } as never) });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('This form has expired or was not issued to this browser');
    // Still unused.
    await request(service.callback)
      .post('/auth/email/verify')
      .send({ token: tokenOf({ link } as never) })
      .expect(200);
  });
});

describe('REQUIRE_VERIFIED_EMAIL', () => {
  let service: TestService | undefined;
  afterEach(async () => {
    await service?.close();
    service = undefined;
  });

  it('off (default): an unverified account signs in', async () => {
    service = await startTestService();
    await register(service, 'rv0@example.com');
    await login(service, 'rv0@example.com').expect(200);
  });

  it('on: a wrong password gets the usual answer; the right one email_not_verified (403) until the address is confirmed', async () => {
    service = await startTestService({ REQUIRE_VERIFIED_EMAIL: 'true' });
    await register(service, 'rv1@example.com');
    const wrong = await login(service, 'rv1@example.com', 'not the password at all');
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
    const unknown = await login(service, 'nobody-rv@example.com');
    expect(unknown.body).toEqual(wrong.body);
    const right = await login(service, 'rv1@example.com');
    expect(right.status).toBe(403);
    expect(right.body.error).toBe('email_not_verified');
    const token = tokenOf(await lastMail(service, 'rv1@example.com', 'verify-email'));
    await request(service.callback).post('/auth/email/verify').send({ token }).expect(200);
    await login(service, 'rv1@example.com').expect(200);
  });
});

describe('REQUIRE_VERIFIED_EMAIL at the token endpoint', () => {
  it('answers the password grant with invalid_grant (RFC 6749 §5.2) whose description names email_not_verified', async () => {
    const service = await startTestService({ REQUIRE_VERIFIED_EMAIL: 'true' });
    try {
      await register(service, 'rv-token@example.com');
      const grant = (password: string) =>
        request(service.callback)
          .post('/oauth/token')
          .type('form')
          .send({ grant_type: 'password', client_id: 'demo-app', username: 'rv-token@example.com', password });
      const wrong = await grant('not the password at all').expect(400);
      const right = await grant(PASSWORD).expect(400);
      expect(right.body.error).toBe('invalid_grant');
      expect(right.body.error_description).toMatch(/^email_not_verified: /);
      expect(wrong.body.error_description).not.toMatch(/email_not_verified/);
    } finally {
      await service.close();
    }
  });
});

describe('REQUIRE_VERIFIED_EMAIL on the hosted login page', () => {
  it('shows the login page again (403) with a message tied to the form, then signs in once the address is confirmed', async () => {
    const service = await startTestService({ REQUIRE_VERIFIED_EMAIL: 'true' });
    const server = createServer(service.callback);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await register(service, 'rv-page@example.com');
      const query = new URLSearchParams({
        response_type: 'code',
        client_id: 'demo-spa',
        redirect_uri: 'http://127.0.0.1:8080/callback',
        scope: 'profile',
        state: 's',
        code_challenge: createHash('sha256').update('v'.repeat(50)).digest('base64url'),
        code_challenge_method: 'S256',
      });
      const browser = new FormBrowser(origin);
      const login = await browser.get(`${origin}/oauth/authorize?${query}`);
      expect(login.status).toBe(200);
      const refused = await browser.submit(login, { email: 'rv-page@example.com', password: PASSWORD });
      expect(refused.status).toBe(403);
      expect(refused.html).toContain('Please confirm your email address first');
      expect(refused.html).toContain('role="alert"');
      const token = tokenOf(await lastMail(service, 'rv-page@example.com', 'verify-email'));
      await request(service.callback).post('/auth/email/verify').send({ token }).expect(200);
      const next = await browser.submit(refused, { email: 'rv-page@example.com', password: PASSWORD });
      expect(next.status === 303 || next.html.includes('name="decision"')).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await service.close();
    }
  });
});
