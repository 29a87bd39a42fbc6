/**
 * Abuse of the mailed-link flows: throttles per address and per network (an IPv6 /64 is one
 * network, as for logins) on forgot, resend and email change, refunded on nothing; and every
 * kind of token refused after use, after expiry, for another user, and after a newer one.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { startTestService, type TestService } from '../support/app.js';
import { lastMail, tokenOf } from '../support/mailbox.js';

const PASSWORD = 'a long passphrase for tests';

async function account(service: TestService, email: string) {
  const id = (await request(service.callback).post('/auth/register').send({ email, password: PASSWORD }).expect(201)).body.user.id as string;
  const tokens = (await request(service.callback).post('/auth/login').send({ email, password: PASSWORD }).expect(200)).body;
  return { id, accessToken: tokens.access_token as string };
}

describe('throttles', () => {
  it('counts an IPv6 /64 as one network on forgot and resend, whatever the address', async () => {
    const service = await startTestService({ TRUST_PROXY_HOPS: '1', MAIL_RATE_LIMIT: '100/1h', MAIL_IP_RATE_LIMIT: '3/1h' });
    try {
      const from = (ip: string, path: string, email: string) => request(service.callback).post(path).set('X-Forwarded-For', ip).send({ email });
      await from('2001:db8:1:2::1', '/auth/password/forgot', 'a@example.com').expect(202);
      await from('2001:db8:1:2::ffff', '/auth/email/verify/resend', 'b@example.com').expect(202);
      await from('2001:db8:1:2:abcd::9', '/auth/password/forgot', 'c@example.com').expect(202);
      const refused = await from('2001:db8:1:2:1:2:3:4', '/auth/email/verify/resend', 'd@example.com');
      expect(refused.status).toBe(429);
      expect(refused.body.error).toBe('too_many_requests');
      // Another /64 has its own budget.
      await from('2001:db8:1:3::1', '/auth/password/forgot', 'a@example.com').expect(202);
    } finally {
      await service.close();
    }
  });

  it('counts per address across networks, and a refused request does not refund', async () => {
    const service = await startTestService({ TRUST_PROXY_HOPS: '1', MAIL_RATE_LIMIT: '2/1h', MAIL_IP_RATE_LIMIT: '100/1h' });
    try {
      const from = (ip: string) => request(service.callback).post('/auth/email/verify/resend').set('X-Forwarded-For', ip).send({ email: 'x@example.com' });
      await from('192.0.2.1').expect(202);
      await from('192.0.2.2').expect(202);
      await from('192.0.2.3').expect(429);
      await from('192.0.2.4').expect(429);
    } finally {
      await service.close();
    }
  });

  it('throttles email-change requests per new address and per network', async () => {
    const service = await startTestService({ MAIL_RATE_LIMIT: '2/1h', MAIL_IP_RATE_LIMIT: '100/1h' });
    try {
      const { accessToken } = await account(service, 'ab1@example.com');
      const change = () =>
        request(service.callback)
          .post('/auth/email')
          .set('Authorization', `Bearer ${accessToken}`)
          .send({ current_password: PASSWORD, new_email: 'ab1-new@example.com' });
      await change().expect(202);
      await change().expect(202);
      await change().expect(429);
    } finally {
      await service.close();
    }
  });
});

describe('token misuse, for every kind of link', () => {
  const kinds = [
    {
      kind: 'verify-email',
      ttlMs: 24 * 3600_000,
      issue: (service: TestService, email: string) => request(service.callback).post('/auth/email/verify/resend').send({ email }).expect(202),
      use: (service: TestService, token: string) => request(service.callback).post('/auth/email/verify').send({ token }),
      mailTo: (email: string) => email,
    },
    {
      kind: 'password-reset',
      ttlMs: 30 * 60_000,
      issue: (service: TestService, email: string) => request(service.callback).post('/auth/password/forgot').send({ email }).expect(202),
      use: (service: TestService, token: string) =>
        request(service.callback).post('/auth/password/reset').send({ token, new_password: 'violet kettle under the moss' }),
      mailTo: (email: string) => email,
    },
    {
      kind: 'email-change-confirm',
      ttlMs: 24 * 3600_000,
      // A fresh access token each time: the clock moves past the old one's lifetime.
      issue: async (service: TestService, email: string) => {
        const { access_token: accessToken } = (await request(service.callback).post('/auth/login').send({ email, password: PASSWORD }).expect(200)).body;
        return request(service.callback)
          .post('/auth/email')
          .set('Authorization', `Bearer ${accessToken}`)
          .send({ current_password: PASSWORD, new_email: `new-${email}` })
          .expect(202);
      },
      use: (service: TestService, token: string) => request(service.callback).post('/auth/email/confirm').send({ token }),
      mailTo: (email: string) => `new-${email}`,
    },
  ];

  for (const { kind, ttlMs, issue, use, mailTo } of kinds) {
    it(`${kind}: refused for another user, after a newer one, after expiry, after use`, async () => {
      const clock = manualClock(Date.UTC(2026, 6, 1));
      const service = await startTestService({ MAIL_RATE_LIMIT: '100/1h', MAIL_IP_RATE_LIMIT: '100/1h' }, { clock });
      try {
        const email = `${kind}@example.com`;
        await account(service, email);
        const other = await account(service, `other-${kind}@example.com`);
        const get = async () => {
          await issue(service, email);
          return tokenOf(await lastMail(service, mailTo(email), kind));
        };
        const expectRefused = async (token: string) => {
          const response = await use(service, token);
          expect(response.status).toBe(400);
          expect(response.body.error).toBe('invalid_grant');
        };
        const first = await get();
        await expectRefused(`${other.id}.${first.split('.')[1]}`);
        const second = await get();
        await expectRefused(first);
        clock.advance(ttlMs);
        await expectRefused(second);
        const third = await get();
        expect((await use(service, third)).status).toBe(200);
        await expectRefused(third);
      } finally {
        await service.close();
      }
    });
  }
});
