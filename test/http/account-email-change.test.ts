/**
 * Email change: asked with a Bearer token and the current password, confirmed by the new
 * address, announced to the old one; a taken address gets the same answer (and no link);
 * nothing changes before the confirmation; the link's token rules.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';
import { FormBrowser } from '../support/hosted-pages.js';
import { lastMail, mailbox, tokenOf } from '../support/mailbox.js';

const PASSWORD = 'a long passphrase for tests';

let service: TestService;
beforeAll(async () => {
  service = await startTestService({ MAIL_RATE_LIMIT: '1000/1h', MAIL_IP_RATE_LIMIT: '1000/1h' });
});
afterAll(async () => {
  await service.close();
});

async function account(email: string): Promise<{ id: string; accessToken: string }> {
  const id = (await request(service.callback).post('/auth/register').send({ email, password: PASSWORD }).expect(201)).body.user.id as string;
  const tokens = (await request(service.callback).post('/auth/login').send({ email, password: PASSWORD }).expect(200)).body;
  return { id, accessToken: tokens.access_token as string };
}
const change = (accessToken: string, body: Record<string, unknown>) =>
  request(service.callback).post('/auth/email').set('Authorization', `Bearer ${accessToken}`).send(body);
const confirm = (token: string) => request(service.callback).post('/auth/email/confirm').send({ token });

describe('email change', () => {
  it('needs a user access token and the current password', async () => {
    const { accessToken } = await account('c0@example.com');
    await request(service.callback).post('/auth/email').send({ current_password: PASSWORD, new_email: 'x@example.com' }).expect(401);
    const wrong = await change(accessToken, { current_password: 'not my password', new_email: 'x0@example.com' });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatchObject({ error: 'invalid_request', error_description: 'current_password is wrong' });
    await change(accessToken, { current_password: PASSWORD, new_email: 'c0@example.com' }).expect(400);
    await change(accessToken, { current_password: PASSWORD, new_email: 'not an address' }).expect(400);
  });

  it('mails a link to the new address and a notice to the old; changes only on confirmation', async () => {
    const { accessToken } = await account('c1@example.com');
    const asked = await change(accessToken, { current_password: PASSWORD, new_email: 'C1-new@Example.com' }).expect(202);
    const confirmMail = await lastMail(service, 'c1-new@example.com', 'email-change-confirm');
    expect(confirmMail.link).toMatch(/^http:\/\/auth\.test\/account\/confirm-email\?token=/);
    const notice = await lastMail(service, 'c1@example.com', 'email-change-notice');
    expect(notice.text).not.toContain('c1-new@example.com');
    // Nothing changed yet.
    await request(service.callback).post('/auth/login').send({ email: 'c1@example.com', password: PASSWORD }).expect(200);
    const done = await confirm(tokenOf(confirmMail)).expect(200);
    expect(done.body.user).toMatchObject({ email: 'c1-new@example.com', email_verified: true });
    await request(service.callback).post('/auth/login').send({ email: 'c1-new@example.com', password: PASSWORD }).expect(200);
    await request(service.callback).post('/auth/login').send({ email: 'c1@example.com', password: PASSWORD }).expect(400);
    await confirm(tokenOf(confirmMail)).expect(400);
    expect(asked.body).toEqual({ status: 'accepted', message: expect.any(String) });
  });

  it('answers a taken address exactly like a free one, and sends it no link', async () => {
    await account('c2-taken@example.com');
    const { accessToken } = await account('c2@example.com');
    const before = await mailbox(service);
    const taken = await change(accessToken, { current_password: PASSWORD, new_email: 'c2-taken@example.com' }).expect(202);
    const free = await change(accessToken, { current_password: PASSWORD, new_email: 'c2-free@example.com' }).expect(202);
    expect(taken.body).toEqual(free.body);
    const seen = new Set(before.map((mail) => mail.id));
    const sent = (await mailbox(service)).filter((mail) => !seen.has(mail.id)).reverse();
    expect(sent.filter((mail) => mail.kind === 'email-change-confirm').map((mail) => mail.to)).toEqual(['c2-free@example.com']);
    expect(sent.filter((mail) => mail.kind === 'email-change-notice').map((mail) => mail.to)).toEqual(['c2@example.com', 'c2@example.com']);
  });

  it('refuses an older link once a newer change was asked, and a link whose old address is gone', async () => {
    const { accessToken } = await account('c3@example.com');
    await change(accessToken, { current_password: PASSWORD, new_email: 'c3-a@example.com' }).expect(202);
    const first = tokenOf(await lastMail(service, 'c3-a@example.com', 'email-change-confirm'));
    await change(accessToken, { current_password: PASSWORD, new_email: 'c3-b@example.com' }).expect(202);
    const second = tokenOf(await lastMail(service, 'c3-b@example.com', 'email-change-confirm'));
    await confirm(first).expect(400);
    await confirm(second).expect(200);
    // The verification link sent to the first address at registration is dead now.
    const verify = tokenOf(await lastMail(service, 'c3@example.com', 'verify-email'));
    await request(service.callback).post('/auth/email/verify').send({ token: verify }).expect(400);
  });

  it('answers 409 when the new address got an account between the request and the confirmation', async () => {
    const { accessToken } = await account('c4@example.com');
    await change(accessToken, { current_password: PASSWORD, new_email: 'c4-new@example.com' }).expect(202);
    const token = tokenOf(await lastMail(service, 'c4-new@example.com', 'email-change-confirm'));
    await account('c4-new@example.com');
    const raced = await confirm(token);
    expect(raced.status).toBe(409);
    expect(raced.body.error).toBe('conflict');
  });

  it('confirms through the hosted page', async () => {
    const { accessToken } = await account('c5@example.com');
    await change(accessToken, { current_password: PASSWORD, new_email: 'c5-new@example.com' }).expect(202);
    const link = new URL((await lastMail(service, 'c5-new@example.com', 'email-change-confirm')).link!);
    const server = createServer(service.callback);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const browser = new FormBrowser(origin);
      const page = await browser.get(`${origin}${link.pathname}${link.search}`);
      expect(page.status).toBe(200);
      const done = await browser.submit(page, { token: link.searchParams.get('token')! });
      expect(done.status).toBe(200);
      expect(done.html).toContain('c5-new@example.com is confirmed');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
