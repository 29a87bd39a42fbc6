/**
 * Mail out through a real SMTP server (smtp-server + mailparser) and a real Redis Stream:
 * delivery with text and HTML parts, STARTTLS with a self-signed certificate, an outage that
 * ends (nothing lost across an authority restart, nothing sent twice), and the dev mode
 * (terminal + GET /dev/mail, never without dev mode).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { createMailOut } from '../../src/compose.js';
import { parseConfig } from '../../src/config.js';
import { createMemoryMailQueue } from '../../src/stores/memory/mail-queue.js';
import { MAIL_DEAD_STREAM, MAIL_STREAM } from '../../src/stores/redis/mail-queue.js';
import { cryptoRandom } from '../../src/random.js';
import { startTestService } from '../support/app.js';
import { captureLogs } from '../support/logs.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { startTestSmtp } from '../support/smtp.js';
import { selfSignedCertificate } from '../support/tls.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const LINK = 'http://auth.test/auth/email/verify?token=abc';

describe('mail over SMTP', () => {
  it('delivers a text and HTML message from the queue, with the product name and MAIL_FROM', async () => {
    await redis.flush();
    const smtp = await startTestSmtp();
    const service = await startTestService({ REDIS_URL: redis.url, SMTP_URL: smtp.url, MAIL_FROM: 'Acme <accounts@acme.test>', PRODUCT_NAME: 'Acme ID' });
    try {
      await service.mail.send('verify-email', 'ada@example.com', { link: LINK, expiresIn: '24 hours' });
      const [mail] = await smtp.waitFor(1);
      expect(mail!.envelopeTo).toEqual(['ada@example.com']);
      expect(mail!.parsed.subject).toBe('Confirm your email address for Acme ID');
      expect(mail!.parsed.from?.value[0]).toMatchObject({ name: 'Acme', address: 'accounts@acme.test' });
      expect(mail!.parsed.text).toContain(LINK);
      expect(mail!.parsed.html).toContain(`href="${LINK}"`);
      expect(mail!.parsed.messageId).toMatch(/@auth\.test>?$/);
      await expect.poll(() => redis.client.xlen(MAIL_STREAM)).toBe(0);
      // The queue never held the link in the clear.
    } finally {
      await service.close();
      await smtp.stop();
    }
  });

  it('keeps no secret in Redis: the queued payload is sealed', async () => {
    await redis.flush();
    const smtp = await startTestSmtp({ listen: false });
    const service = await startTestService({ REDIS_URL: redis.url, SMTP_URL: smtp.url, MAIL_RETRY_BASE: '60s' });
    try {
      await service.mail.send('password-reset', 'ada@example.com', { link: LINK, expiresIn: '30 minutes' });
      const entries = await redis.client.xrange(MAIL_STREAM, '-', '+');
      expect(entries).toHaveLength(1);
      expect(JSON.stringify(entries)).not.toContain('token=abc');
      expect(JSON.stringify(entries)).not.toContain('ada@example.com');
    } finally {
      await service.close();
    }
  });

  it('upgrades with STARTTLS to a server whose certificate it trusts through SMTP_CA_FILE', async () => {
    await redis.flush();
    const tls = selfSignedCertificate();
    const dir = mkdtempSync(join(tmpdir(), 'smtp-ca-'));
    writeFileSync(join(dir, 'ca.pem'), tls.cert);
    const smtp = await startTestSmtp({ tls });
    const service = await startTestService({ REDIS_URL: redis.url, SMTP_URL: `${smtp.url}?requireTLS=true`, SMTP_CA_FILE: join(dir, 'ca.pem') });
    try {
      await service.mail.send('password-changed', 'ada@example.com', {});
      const [mail] = await smtp.waitFor(1);
      expect(mail!.secure).toBe(true);
      expect(mail!.parsed.subject).toBe('Your Token Authority password was changed');
    } finally {
      await service.close();
      await smtp.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to send in the clear when requireTLS is asked and the server has no STARTTLS', async () => {
    await redis.flush();
    const smtp = await startTestSmtp();
    const service = await startTestService({ REDIS_URL: redis.url, SMTP_URL: `${smtp.url}?requireTLS=true`, MAIL_RETRY_BASE: '60s' });
    try {
      await service.mail.send('password-changed', 'ada@example.com', {});
      await service.mail.flush();
      await expect.poll(() => service.logs.text()).toContain('sending failed; will retry');
      expect(smtp.received).toHaveLength(0);
      expect(await redis.client.xlen(MAIL_STREAM)).toBe(1);
    } finally {
      await service.close();
      await smtp.stop();
    }
  });

  it('SMTP down, then the authority restarts, then SMTP is back: every message delivered once', async () => {
    await redis.flush();
    const smtp = await startTestSmtp({ listen: false });
    const env = { REDIS_URL: redis.url, SMTP_URL: smtp.url, MAIL_RETRY_BASE: '1s', MAIL_RETRY_MAX: '2s' };
    const first = await startTestService(env);
    const count = 5;
    for (let i = 0; i < count; i += 1) await first.mail.send('verify-email', `user${i}@example.com`, { link: `${LINK}${i}`, expiresIn: '24 hours' });
    // Refused connections: each message tried and left pending.
    await expect.poll(() => first.logs.text().split('sending failed').length - 1, { timeout: 5000 }).toBeGreaterThanOrEqual(count);
    await first.close();
    expect(await redis.client.xlen(MAIL_STREAM)).toBe(count);

    const second = await startTestService(env);
    try {
      await smtp.listen();
      const received = await smtp.waitFor(count, 15_000);
      // A moment more: nothing further arrives (no duplicates).
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(received).toHaveLength(count);
      expect(new Set(received.map((mail) => mail.parsed.messageId)).size).toBe(count);
      expect(received.map((mail) => mail.envelopeTo[0]).sort()).toEqual(Array.from({ length: count }, (_, i) => `user${i}@example.com`));
      await expect.poll(() => redis.client.xlen(MAIL_STREAM)).toBe(0);
    } finally {
      await second.close();
      await smtp.stop();
    }
  }, 30_000);

  it('buries a message after MAIL_MAX_ATTEMPTS failed attempts, with an error line', async () => {
    await redis.flush();
    const smtp = await startTestSmtp({ listen: false });
    const service = await startTestService({ REDIS_URL: redis.url, SMTP_URL: smtp.url, MAIL_RETRY_BASE: '1s', MAIL_RETRY_MAX: '1s', MAIL_MAX_ATTEMPTS: '2' });
    try {
      await service.mail.send('verify-email', 'ada@example.com', { link: LINK, expiresIn: '24 hours' });
      await expect.poll(() => redis.client.xlen(MAIL_DEAD_STREAM), { timeout: 8000 }).toBe(1);
      expect(await redis.client.xlen(MAIL_STREAM)).toBe(0);
      expect(service.logs.text()).toContain('giving up on a message');
    } finally {
      await service.close();
    }
  }, 15_000);
});

describe('mail in dev mode (no SMTP_URL)', () => {
  it('prints each message with its link first and lists the last ones at GET /dev/mail', async () => {
    const printed: string[] = [];
    const service = await startTestService({}, { print: (text) => printed.push(text) });
    try {
      await service.mail.send('password-reset', 'ada@example.com', { link: LINK, expiresIn: '30 minutes' });
      await expect.poll(() => printed.length).toBe(1);
      const lines = printed[0]!.split('\n').filter((line) => !/^-+$/.test(line));
      expect(lines[0]).toBe(`mail link: ${LINK}`);
      const response = await request(service.callback).get('/dev/mail').expect(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body.messages).toHaveLength(1);
      expect(response.body.messages[0]).toMatchObject({
        kind: 'password-reset',
        to: 'ada@example.com',
        link: LINK,
        subject: 'Reset your Token Authority password',
      });
    } finally {
      await service.close();
    }
  });

  it('keeps only the last 50', async () => {
    const service = await startTestService();
    try {
      for (let i = 0; i < 55; i += 1) await service.mail.send('verify-email', `u${i}@example.com`, { link: `${LINK}${i}`, expiresIn: '24 hours' });
      await service.mail.flush();
      const response = await request(service.callback).get('/dev/mail').expect(200);
      expect(response.body.messages).toHaveLength(50);
      expect(response.body.messages[0].to).toBe('u54@example.com');
    } finally {
      await service.close();
    }
  });

  it('is not mounted when SMTP_URL is set', async () => {
    const smtp = await startTestSmtp();
    const service = await startTestService({ SMTP_URL: smtp.url });
    try {
      await request(service.callback).get('/dev/mail').expect(404);
    } finally {
      await service.close();
      await smtp.stop();
    }
  });

  it('never exists in production, where mail without SMTP_URL is not sent at all', async () => {
    const config = parseConfig({ NODE_ENV: 'production', ISSUER: 'https://id.example', MONGODB_URI: 'mongodb://127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1' });
    const logs = captureLogs();
    const queue = createMemoryMailQueue({ clock: systemClock });
    const printed: string[] = [];
    const { outbox, devMail } = await createMailOut(config, {
      queue,
      refreshSecret: 'x'.repeat(40),
      logger: logs.logger,
      clock: systemClock,
      random: cryptoRandom,
      print: (text) => printed.push(text),
    });
    expect(devMail).toBeUndefined();
    await outbox.send('verify-email', 'ada@example.com', { link: LINK, expiresIn: '24 hours' });
    expect(await queue.size()).toBe(0);
    expect(printed).toEqual([]);
    expect(logs.text()).toContain('SMTP_URL is unset');
    expect(logs.text()).not.toContain('token=abc');
  });
});

describe('mail templates', () => {
  it('an operator overrides a template through MAIL_TEMPLATES_DIR; HTML is escaped, the subject is one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mail-templates-'));
    writeFileSync(join(dir, 'verify-email.text.eta'), 'Subject: Welcome to <%= it.productName %>, <%= it.email %>\n\nClick: <%= it.link %>\n');
    writeFileSync(join(dir, 'verify-email.html.eta'), '<p>Hi <%= it.email %></p>');
    const smtp = await startTestSmtp();
    const service = await startTestService({ SMTP_URL: smtp.url, MAIL_TEMPLATES_DIR: dir });
    try {
      await service.mail.send('verify-email', '<b>x</b>@example.com\r\nBcc: evil@example.com', { link: LINK, expiresIn: '24 hours' });
      const [mail] = await smtp.waitFor(1);
      expect(mail!.parsed.text).toBe(`Click: ${LINK}\n`);
      expect(mail!.parsed.html).toContain('&lt;b&gt;x&lt;/b&gt;');
      expect(mail!.parsed.subject).not.toContain('\n');
      expect(mail!.parsed.headers.get('bcc')).toBeUndefined();
    } finally {
      await service.close();
      await smtp.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a broken override stops start-up with the file named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mail-templates-'));
    writeFileSync(join(dir, 'password-reset.text.eta'), 'no subject line\n');
    try {
      await expect(startTestService({ MAIL_TEMPLATES_DIR: dir })).rejects.toThrow(/password-reset\.text\.eta/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
