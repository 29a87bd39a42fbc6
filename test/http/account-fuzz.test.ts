/**
 * Property-based fuzzing (fast-check) of the account endpoints and pages with hostile bodies,
 * tokens and content types, on real Redis and the harness's MongoDB: 2,000 requests, none
 * answered 5xx; API errors in the JSON format, page errors as pages under their CSP.
 */
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';
import { testDatabaseUri } from '../support/mongo.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261204);
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

let redis: TestRedis;
let service: TestService;
let userId = '';
let accessToken = '';

beforeAll(async () => {
  redis = await startTestRedis();
  service = await startTestService({
    REDIS_URL: redis.url,
    MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'account-fuzz'),
    MAIL_RATE_LIMIT: '100000/1h',
    MAIL_IP_RATE_LIMIT: '100000/1h',
    LOGIN_RATE_LIMIT: '100000/15m',
    LOGIN_IP_RATE_LIMIT: '100000/15m',
    LOGIN_ACCOUNT_RATE_LIMIT: '100000/15m',
    LOG_LEVEL: 'info',
  });
  const registered = await request(service.callback)
    .post('/auth/register')
    .send({ email: 'fuzzed@example.com', password: 'a long passphrase for tests' })
    .expect(201);
  userId = registered.body.user.id;
  accessToken = (await request(service.callback).post('/auth/login').send({ email: 'fuzzed@example.com', password: 'a long passphrase for tests' }).expect(200))
    .body.access_token;
}, 60_000);

afterAll(async () => {
  await service?.close();
  await redis?.stop();
});

const API = ['/auth/email/verify/resend', '/auth/email/verify', '/auth/email', '/auth/email/confirm', '/auth/password/forgot', '/auth/password/reset'];
const PAGES = ['/account/forgot-password', '/account/reset-password', '/account/verify-email', '/account/confirm-email'];
const FIELDS = ['email', 'token', 'new_password', 'current_password', 'new_email', 'csrf', 'username', '__proto__', 'constructor'];

const tokenLike = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.constantFrom('', '.', '..', 'a.b', '{"$gt":""}', '\u0000', '%00', '\uD800', `${'0'.repeat(24)}.${'A'.repeat(43)}`),
  fc
    .string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 43, maxLength: 43 })
    .map((secret) => `${userId}.${secret}`),
  fc.integer({ min: 100, max: 70_000 }).map((n) => 'x'.repeat(n)),
);
const value = fc.oneof(
  tokenLike,
  fc.constantFrom('fuzzed@example.com', 'FUZZED@example.com ', 'a@b', 'not an address', 'password1', 'a long passphrase for tests'),
  fc.jsonValue({ maxDepth: 3 }),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
);
const body = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 5 }).map((object) => ({ type: 'application/json', text: JSON.stringify(object) })),
  fc.jsonValue({ maxDepth: 4 }).map((json) => ({ type: 'application/json', text: JSON.stringify(json) ?? 'null' })),
  fc.constantFrom('{bad json', '[]', '"x"', '', '{"__proto__":{"admin":true}}').map((text) => ({ type: 'application/json', text })),
  fc.array(fc.tuple(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 10 })), tokenLike), { maxLength: 6 }).map((pairs) => ({
    type: 'application/x-www-form-urlencoded',
    text: pairs
      .map(([key, item]) => `${encodeURIComponent(key.replace(/[\uD800-\uDFFF]/g, ''))}=${encodeURIComponent(item.replace(/[\uD800-\uDFFF]/g, ''))}`)
      .join('&'),
  })),
  fc
    .tuple(fc.constantFrom('text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', ''), fc.string({ maxLength: 50 }))
    .map(([type, text]) => ({ type, text })),
);

describe('fuzzing the account endpoints', () => {
  it(`never answers 5xx (seed ${SEED}, ${RUNS} requests)`, async () => {
    const statuses = new Map<number, number>();
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...API, ...PAGES.map((path) => `POST ${path}`), ...PAGES.map((path) => `GET ${path}`)),
        body,
        tokenLike,
        fc.boolean(),
        async (target, payload, queryToken, withBearer) => {
          const [method, path] = target.startsWith('GET ')
            ? ['GET', target.slice(4)]
            : target.startsWith('POST ')
              ? ['POST', target.slice(5)]
              : ['POST', target];
          // Node itself answers 431 to a request line past its 16 KiB header limit, before the app: stay under it.
          const url = method === 'GET' ? `${path}?token=${encodeURIComponent(queryToken.replace(/[\uD800-\uDFFF]/g, '').slice(0, 3000))}` : path;
          let call = method === 'GET' ? request(service.callback).get(url) : request(service.callback).post(url);
          if (withBearer) call = call.set('Authorization', `Bearer ${accessToken}`);
          if (method === 'POST') {
            if (payload.type) call = call.set('Content-Type', payload.type);
            call = call.send(payload.text);
          }
          const res = await call;
          sent += 1;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status, `${method} ${url.slice(0, 100)} ${payload.type} ${payload.text.slice(0, 200)} → ${res.text.slice(0, 200)}`).toBeLessThan(500);
          // A body no browser form sends (text/plain, bad JSON) is refused by the app-wide body
          // parser before any page handler runs, in the JSON format, as on the login page.
          const parserRefusal = method === 'POST' && res.headers['content-type']?.startsWith('application/json') && [400, 413, 415].includes(res.status);
          if (path.startsWith('/account/') && !parserRefusal) {
            expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
            expect(res.headers['content-security-policy']).toContain("default-src 'none'");
          } else if (res.status >= 400) {
            expect(res.body).toEqual({ error: expect.any(String), error_description: expect.any(String) });
          }
        },
      ),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    console.log(`account fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
    expect(sent).toBe(RUNS);
    await service.recovery.settled();
    // Still healthy, and the account still signs in with its password.
    await request(service.callback).get('/readyz').expect(200);
    await request(service.callback).post('/auth/login').send({ email: 'fuzzed@example.com', password: 'a long passphrase for tests' }).expect(200);
  }, 120_000);
});
