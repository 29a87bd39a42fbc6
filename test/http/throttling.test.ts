/**
 * Login and client-authentication throttling on a real Redis, including two service
 * instances sharing it, and the account-wide budget seen from several IPs.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidGrantError } from '../../src/errors.js';
import { clientNetwork } from '../../src/net.js';
import { createRedisClient, closeRedis, connectRedis } from '../../src/stores/redis/connection.js';
import { createRedisRateLimits } from '../../src/stores/redis/rate-limits.js';
import { createLoginThrottle } from '../../src/users/login-throttle.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { expectOAuthError } from '../support/http.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let one: TestService;
let two: TestService;

beforeAll(async () => {
  redis = await startTestRedis();
  const env = {
    REDIS_URL: redis.url,
    LOGIN_IP_RATE_LIMIT: '12/15m',
    CLIENT_AUTH_RATE_LIMIT: '3/15m',
    REGISTER_RATE_LIMIT: '2/1h',
    REGISTER_IP_RATE_LIMIT: '100/1h',
  };
  one = await startTestService(env);
  two = await startTestService(env);
});
afterAll(async () => {
  await one?.close();
  await two?.close();
  await redis?.stop();
});

const attempt = (service: TestService, email: string, password = 'wrong password!') => request(service.callback).post('/auth/login').send({ email, password });

describe('login throttling', () => {
  it('answers the sixth failure for one account from one IP with 429, Retry-After and the JSON format; other accounts are unaffected', async () => {
    await redis.flush();
    for (let i = 0; i < 5; i += 1) expectOAuthError(await attempt(one, 'victim@example.com'), 400, 'invalid_grant');
    const blocked = await attempt(one, 'victim@example.com');
    expectOAuthError(blocked, 429, 'too_many_requests');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(800);
    expect(Number(blocked.headers['retry-after'])).toBeLessThanOrEqual(900);
    // Even the right password is refused while blocked: the limit is not an oracle.
    expectOAuthError(await attempt(one, 'victim@example.com', USER_PASSWORD), 429, 'too_many_requests');
    // Another account from the same IP still gets an honest answer.
    expectOAuthError(await attempt(one, 'bystander@example.com'), 400, 'invalid_grant');
  });

  it('holds under concurrency: of 40 simultaneous wrong attempts only the budget reaches the password check', async () => {
    await redis.flush();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => attempt(i % 2 ? one : two, 'parallel@example.com')));
    const statuses = results.map((res) => res.status);
    expect(statuses.filter((status) => status === 400)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(35);
  });

  it('does not refuse concurrent right passwords because of each other: 10 simultaneous correct logins from one IP all succeed', async () => {
    await redis.flush();
    const results = await Promise.all(Array.from({ length: 10 }, () => attempt(one, USER_EMAIL, USER_PASSWORD)));
    expect(results.map((res) => res.status)).toEqual(Array<number>(10).fill(200));
  });

  it('keys IPv6 clients on their /64, and IPv4-mapped addresses on the IPv4 address', () => {
    expect(clientNetwork('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(clientNetwork('::FFFF:203.0.113.9')).toBe('203.0.113.9');
    expect(clientNetwork('203.0.113.9')).toBe('203.0.113.9');
    expect(clientNetwork('::1')).toBe('0:0:0:0::/64');
  });

  it('ignores a port a proxy appended, and puts anything that is not an address in one bucket', () => {
    expect(clientNetwork('203.0.113.9:5678')).toBe('203.0.113.9');
    expect(clientNetwork('[2001:db8:1:2::3]:5678')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('[2001:db8:1:2::3]')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('unknown')).toBe('invalid');
    expect(clientNetwork('203.0.113.9, junk')).toBe('invalid');
  });

  it('adds up failures spread over two instances sharing one Redis', async () => {
    await redis.flush();
    for (let i = 0; i < 5; i += 1) expectOAuthError(await attempt(i % 2 === 0 ? one : two, USER_EMAIL), 400, 'invalid_grant');
    expectOAuthError(await attempt(two, USER_EMAIL), 429, 'too_many_requests');
    expectOAuthError(await attempt(one, USER_EMAIL, USER_PASSWORD), 429, 'too_many_requests');
  });

  it('applies the same counters to the password grant', async () => {
    await redis.flush();
    for (let i = 0; i < 3; i += 1) expectOAuthError(await attempt(one, USER_EMAIL), 400, 'invalid_grant');
    const grant = () =>
      request(two.callback)
        .post('/oauth/token')
        .type('form')
        .send({ grant_type: 'password', client_id: 'demo-app', username: USER_EMAIL, password: 'wrong password!' });
    expectOAuthError(await grant(), 400, 'invalid_grant');
    expectOAuthError(await grant(), 400, 'invalid_grant');
    const blocked = await grant();
    expectOAuthError(blocked, 429, 'too_many_requests');
    expect(blocked.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('resets the account+IP counter on success', async () => {
    await redis.flush();
    for (let i = 0; i < 4; i += 1) await attempt(one, USER_EMAIL);
    await attempt(one, USER_EMAIL, USER_PASSWORD).expect(200);
    for (let i = 0; i < 5; i += 1) expectOAuthError(await attempt(two, USER_EMAIL), 400, 'invalid_grant');
    expectOAuthError(await attempt(two, USER_EMAIL), 429, 'too_many_requests');
  });

  it('stops credential stuffing: the per-IP budget across accounts', async () => {
    await redis.flush();
    // 12 failures over 12 different accounts: each account is far from its own limit.
    for (let i = 0; i < 12; i += 1) expectOAuthError(await attempt(i % 2 ? one : two, `stuffed${i}@example.com`), 400, 'invalid_grant');
    expectOAuthError(await attempt(one, 'stuffed-next@example.com'), 429, 'too_many_requests');
  });

  /** A login throttle of its own on the suite's Redis (flushed first), for budgets the services do not use. */
  async function withThrottle(
    budgets: Parameters<typeof createLoginThrottle>[1],
    run: (throttle: ReturnType<typeof createLoginThrottle>) => Promise<void>,
  ): Promise<void> {
    const client = createRedisClient({ url: redis.url });
    await connectRedis(client);
    try {
      await redis.flush();
      await run(createLoginThrottle(createRedisRateLimits(client), budgets));
    } finally {
      await closeRedis(client);
    }
  }

  type Throttle = ReturnType<typeof createLoginThrottle>;
  const right = (throttle: Throttle, email: string, ip: string) => throttle.judge(email, ip, async () => 'in');
  /** A judged wrong password: counted, its InvalidGrantError swallowed. */
  const wrong = (throttle: Throttle, email: string, ip: string) =>
    throttle
      .judge(email, ip, async () => {
        throw new InvalidGrantError('invalid email or password');
      })
      .catch((err: unknown) => {
        if (!(err instanceof InvalidGrantError)) throw err;
      });

  it('refunds a successful login: an account used from many places never spends its budgets by succeeding', async () => {
    const budget = { points: 3, durationSec: 900 };
    await withThrottle({ accountIp: budget, ip: budget, account: budget }, async (throttle) => {
      // Ten good logins, each from another address, then ten from one: more than any budget.
      for (let i = 0; i < 10; i += 1) await right(throttle, 'busy@example.com', `203.0.113.${i}`);
      for (let i = 0; i < 10; i += 1) await right(throttle, 'busy@example.com', '198.51.100.1');
      await expect(right(throttle, 'busy@example.com', '198.51.100.2')).resolves.toBe('in');
    });
  });

  it('counts an account from one IPv6 /64 as one account+IP pair, whichever addresses of it are used', async () => {
    const wide = { points: 100, durationSec: 900 };
    await withThrottle({ accountIp: { points: 3, durationSec: 900 }, ip: wide, account: wide }, async (throttle) => {
      for (const host of ['1', '2', '3']) await wrong(throttle, 'rotating@example.com', `2001:db8:5:6::${host}`);
      await expect(right(throttle, 'rotating@example.com', '2001:db8:5:6:ffff::4')).rejects.toMatchObject({ status: 429 });
      // Another /64 is another pair.
      await expect(right(throttle, 'rotating@example.com', '2001:db8:5:7::1')).resolves.toBe('in');
    });
  });

  it('locks an account attacked from many IPs only until the window ends, never for good', async () => {
    const budgets = { accountIp: { points: 5, durationSec: 900 }, ip: { points: 100, durationSec: 900 }, account: { points: 10, durationSec: 2 } };
    await withThrottle(budgets, async (throttle) => {
      // Ten failed attempts, each from another IP: no account+IP or IP budget is near its end.
      for (let i = 0; i < 10; i += 1) await wrong(throttle, 'target@example.com', `203.0.113.${i}`);
      // The owner, from a fresh IP, is slowed down too...
      const locked = await right(throttle, 'target@example.com', '198.51.100.7').catch((err: { status: number; headers: Record<string, string> }) => err);
      expect(locked).toMatchObject({ status: 429, headers: { 'Retry-After': expect.stringMatching(/^[12]$/) } });
      // ...but only until the account window ends.
      await new Promise((resolve) => setTimeout(resolve, 2100));
      await expect(right(throttle, 'target@example.com', '198.51.100.7')).resolves.toBe('in');
    });
  });
});

describe('client authentication throttling', () => {
  it('counts failures from one IP across instances and endpoints, then answers 429', async () => {
    await redis.flush();
    const wrong = `Basic ${Buffer.from('demo-service:not-the-secret').toString('base64')}`;
    const token = (service: typeof one, authorization: string) =>
      request(service.callback).post('/oauth/token').set('Authorization', authorization).type('form').send({ grant_type: 'client_credentials' });
    expectOAuthError(await token(one, wrong), 401, 'invalid_client');
    expectOAuthError(
      await request(two.callback).post('/oauth/introspect').set('Authorization', wrong).type('form').send({ token: 'x' }),
      401,
      'invalid_client',
    );
    expectOAuthError(await request(one.callback).post('/oauth/revoke').set('Authorization', wrong).type('form').send({ token: 'x' }), 401, 'invalid_client');
    // The fourth failure, on the other instance, finds the shared budget (3) spent.
    const blocked = await token(two, wrong);
    expectOAuthError(blocked, 429, 'too_many_requests');
    expect(blocked.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    // The instance that refused the pair now refuses it outright, right secret included.
    expectOAuthError(await token(two, one.basic), 429, 'too_many_requests');
    // The other instance reads the shared counter only when a secret is wrong: the right
    // one still works there (a success costs no round trip), a wrong one is refused.
    expect((await token(one, one.basic)).status).toBe(200);
    expectOAuthError(await token(one, wrong), 429, 'too_many_requests');
    expectOAuthError(await token(one, one.basic), 429, 'too_many_requests');
  });
});

describe('registration of taken emails', () => {
  it('is rate-limited per IP', async () => {
    await redis.flush();
    const taken = () => request(one.callback).post('/auth/register').send({ email: USER_EMAIL, password: 'some password' });
    expectOAuthError(await taken(), 409, 'conflict');
    expectOAuthError(await taken(), 409, 'conflict');
    expectOAuthError(await taken(), 429, 'too_many_requests');
  });

  it('holds under concurrency, and free emails do not spend the budget', async () => {
    await redis.flush();
    await request(one.callback)
      .post('/auth/register')
      .send({ email: `free-${Date.now()}@example.com`, password: 'some password' })
      .expect(201);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => request(two.callback).post('/auth/register').send({ email: USER_EMAIL, password: 'some password' })),
    );
    expect(results.filter((res) => res.status === 409)).toHaveLength(2);
    expect(results.filter((res) => res.status === 429)).toHaveLength(18);
  });
});

describe('registration', () => {
  it('is limited per network for free emails too, before any argon2 work, and a refused one creates nothing', async () => {
    await redis.flush();
    const limited = await startTestService({ REDIS_URL: redis.url, REGISTER_IP_RATE_LIMIT: '3/1h', TRUST_PROXY_HOPS: '1' });
    try {
      const register = (address: string, email: string) =>
        request(limited.callback).post('/auth/register').set('X-Forwarded-For', address).send({ email, password: 'some password' });
      const stamp = Date.now();
      // Three addresses of one IPv6 /64 share a budget of 3...
      for (const host of ['1', '2', '3']) expect((await register(`2001:db8:0:0::${host}`, `r${host}-${stamp}@example.com`)).status).toBe(201);
      const refused = await register('2001:db8::ffff:4', `r4-${stamp}@example.com`);
      expectOAuthError(refused, 429, 'too_many_requests');
      expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(await limited.stores.users.findByEmail(`r4-${stamp}@example.com`)).toBeNull();
      // ...another /64 has its own.
      expect((await register('2001:db8:0:1::1', `r5-${stamp}@example.com`)).status).toBe(201);
    } finally {
      await limited.close();
    }
  });
});

describe('client IP behind proxies', () => {
  it('ignores a spoofed X-Forwarded-For by default, so it cannot dodge the limits', async () => {
    await redis.flush();
    for (let i = 0; i < 5; i += 1) {
      await request(one.callback)
        .post('/auth/login')
        .set('X-Forwarded-For', `198.51.100.${i}`)
        .send({ email: 'spoof@example.com', password: 'wrong password!' });
    }
    const res = await request(one.callback)
      .post('/auth/login')
      .set('X-Forwarded-For', '198.51.100.99')
      .send({ email: 'spoof@example.com', password: 'wrong password!' });
    expectOAuthError(res, 429, 'too_many_requests');
  });

  it('keys limits on the client address our own proxy reports when TRUST_PROXY_HOPS is set', async () => {
    const proxied = await startTestService({ TRUST_PROXY_HOPS: '1' });
    try {
      const from = (ip: string) =>
        request(proxied.callback).post('/auth/login').set('X-Forwarded-For', ip).send({ email: 'proxied@example.com', password: 'wrong password!' });
      for (let i = 0; i < 5; i += 1) expectOAuthError(await from('203.0.113.1'), 400, 'invalid_grant');
      expectOAuthError(await from('203.0.113.1'), 429, 'too_many_requests');
      // Another client behind the same proxy has its own account+IP budget.
      expectOAuthError(await from('203.0.113.2'), 400, 'invalid_grant');
      // Only the last hop counts: a client cannot prepend its own addresses.
      expectOAuthError(await from('10.9.9.9, 203.0.113.1'), 429, 'too_many_requests');
    } finally {
      await proxied.close();
    }
  });
});
