/**
 * The new-password policy: the common-password list, the email's local part, and the
 * k-anonymity breach check against a local HTTP server imitating the range API (only five
 * hex characters of the SHA-1 leave; an API that fails or stalls lets the password through
 * with a log line). Then the same refusals at registration, change and reset over HTTP.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordPolicy } from '../../src/users/password-policy.js';
import { startTestService, USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { captureLogs } from '../support/logs.js';
import { lastMail, tokenOf } from '../support/mailbox.js';

const BREACHED = 'a breached but long passphrase';
const sha1 = (text: string) => createHash('sha1').update(text).digest('hex').toUpperCase();

describe('password policy: list and context', () => {
  const policy = createPasswordPolicy({ logger: captureLogs().logger });

  it('refuses passwords from the common list, whatever their case', async () => {
    for (const password of ['password1', 'Password1', '12345678', 'QWERTYUIOP', 'iloveyou']) {
      expect(await policy.refuse(password, 'someone@example.com'), password).toMatch(/too common/);
    }
  });

  it('refuses a password holding the email’s local part (3 characters or more)', async () => {
    expect(await policy.refuse('my name is Ada.Lovelace!', 'ada.lovelace@example.com')).toMatch(/email address/);
    expect(await policy.refuse('totally unrelated phrase al', 'al@example.com')).toBeUndefined();
  });

  it('allows an uncommon password', async () => {
    expect(await policy.refuse('violet kettle under the moss', 'someone@example.com')).toBeUndefined();
  });
});

describe('password policy: breach range API (k-anonymity)', () => {
  let server: Server;
  let base: string;
  const requested: { url: string; headers: string }[] = [];
  let mode: 'ok' | 'down' | 'stall' = 'ok';

  beforeAll(async () => {
    server = createServer((req, res) => {
      requested.push({ url: req.url ?? '', headers: JSON.stringify(req.headers) });
      if (mode === 'down') return void res.writeHead(503).end();
      if (mode === 'stall') return; // never answers
      const prefix = (req.url ?? '').split('/').pop() ?? '';
      const hash = sha1(BREACHED);
      const lines = ['0018A45C4D1DEF81644B54AB7F969B88D65:1', '00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2'];
      if (hash.startsWith(prefix)) lines.push(`${hash.slice(5)}:42`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\r\n'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/range/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('refuses a password the range lists, sending only the first five hex characters of its SHA-1', async () => {
    const policy = createPasswordPolicy({ hibpRangeUrl: base, logger: captureLogs().logger });
    mode = 'ok';
    requested.length = 0;
    expect(await policy.refuse(BREACHED, 'someone@example.com')).toMatch(/data breach/);
    expect(requested).toHaveLength(1);
    expect(requested[0]!.url).toBe(`/range/${sha1(BREACHED).slice(0, 5)}`);
    expect(requested[0]!.url + requested[0]!.headers).not.toContain(sha1(BREACHED).slice(5));
    expect(await policy.refuse('violet kettle under the moss', 'someone@example.com')).toBeUndefined();
  });

  it('fails open with a log line when the API answers an error or not at all', async () => {
    const logs = captureLogs();
    const policy = createPasswordPolicy({ hibpRangeUrl: base.replace(/\/$/, ''), logger: logs.logger, hibpTimeoutMs: 300 });
    mode = 'down';
    expect(await policy.refuse(BREACHED, 'someone@example.com')).toBeUndefined();
    mode = 'stall';
    expect(await policy.refuse(BREACHED, 'someone@example.com')).toBeUndefined();
    const warnings = logs.entries().filter((entry) => String(entry.msg).includes('breach range API did not answer'));
    expect(warnings).toHaveLength(2);
    expect(logs.text()).not.toContain(BREACHED);
    expect(logs.text()).not.toContain(sha1(BREACHED));
  });
});

describe('the policy at registration, change and reset', () => {
  it('refuses a common password or one with the local part in each, with a 400 naming the field', async () => {
    const service = await startTestService();
    try {
      const common = await request(service.callback).post('/auth/register').send({ email: 'pp@example.com', password: 'password123' });
      expect(common.status).toBe(400);
      expect(common.body).toMatchObject({ error: 'invalid_request', error_description: 'password: is too common: it appears in lists of leaked passwords' });
      const mine = await request(service.callback).post('/auth/register').send({ email: 'margaret@example.com', password: 'Margaret rules 2026' });
      expect(mine.body.error_description).toBe('password: must not contain your email address');

      const tokens = (await request(service.callback).post('/auth/login').send({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200)).body;
      const change = await request(service.callback)
        .post('/auth/password')
        .set('Authorization', `Bearer ${tokens.access_token}`)
        .send({ current_password: USER_PASSWORD, new_password: 'qwertyuiop' });
      expect(change.status).toBe(400);
      expect(change.body.error_description).toMatch(/^new_password: is too common/);

      await request(service.callback).post('/auth/password/forgot').send({ email: USER_EMAIL }).expect(202);
      const token = tokenOf(await lastMail(service, USER_EMAIL, 'password-reset'));
      const reset = await request(service.callback).post('/auth/password/reset').send({ token, new_password: 'iloveyou1' });
      expect(reset.status).toBe(400);
      expect(reset.body.error_description).toMatch(/^new_password: is too common/);
      await request(service.callback).post('/auth/password/reset').send({ token, new_password: 'violet kettle under the moss' }).expect(200);
    } finally {
      await service.close();
    }
  });
});
