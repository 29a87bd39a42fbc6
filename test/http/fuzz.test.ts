/**
 * Property-based fuzzing of every POST endpoint (and the session DELETE) with hostile
 * bodies, headers and content types, against the whole service on real Redis and the
 * harness's MongoDB. Nothing may answer 5xx, every error must be the documented JSON, and
 * afterwards the server is healthy, a user made beforehand still logs in, and the log
 * holds none of the secrets used.
 */
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLIENT_SECRET, startTestService, USER_PASSWORD, type TestService } from '../support/app.js';
import { testDatabaseUri } from '../support/mongo.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 2500);

let redis: TestRedis;
let service: TestService;
let server: Server;
let base: string;
const survivor = { email: 'survivor@example.com', password: 'last one standing 1' };

beforeAll(async () => {
  redis = await startTestRedis();
  service = await startTestService({
    REDIS_URL: redis.url,
    MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'fuzz'),
    // Generous budgets: the fuzzer comes from one IP and must reach the handlers, not the limiter.
    LOGIN_RATE_LIMIT: '100000/15m',
    LOGIN_IP_RATE_LIMIT: '100000/15m',
    LOGIN_ACCOUNT_RATE_LIMIT: '100000/15m',
    CLIENT_AUTH_RATE_LIMIT: '100000/15m',
    REGISTER_RATE_LIMIT: '100000/15m',
    LOG_LEVEL: 'info',
  });
  server = createServer(service.callback);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const res = await fetch(`${base}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(survivor) });
  expect(res.status).toBe(201);
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await service?.close();
  await redis?.stop();
});

/** Percent-encodes UTF-8, lone surrogates included (as U+FFFD), which encodeURIComponent refuses. */
const encode = (text: string): string => [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');

const ENDPOINTS = [
  '/oauth/token',
  '/oauth/revoke',
  '/oauth/introspect',
  '/auth/register',
  '/auth/login',
  '/auth/refresh',
  '/auth/logout',
  '/auth/logout-all',
  '/auth/password',
] as const;
const FIELDS = [
  'grant_type',
  'client_id',
  'client_secret',
  'username',
  'password',
  'email',
  'refresh_token',
  'scope',
  'audience',
  'resource',
  'token',
  'token_type_hint',
  'current_password',
  'new_password',
  'name',
  '__proto__',
  'constructor',
  'prototype',
];

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    '',
    '\u0000',
    'a\u0000b',
    '__proto__',
    'password',
    'refresh_token',
    'client_credentials',
    'demo-app',
    'demo-service',
    'demo@example.com',
    '%00',
    '${jndi:x}',
    "' OR 1=1 --",
    '{"$gt": ""}',
    'Bearer',
    '..',
    '\uD800',
  ),
  fc.integer({ min: 1, max: 80_000 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom(
    'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
    'eyJhbGciOiJIUzI1NiJ9.e30.sig',
    'a.b.c.d.e',
    '....',
    'x'.repeat(43) + '.1.' + 'y'.repeat(43) + '.' + 'z'.repeat(22),
  ),
);
const jsonValue = fc.oneof(
  hostileString,
  fc.jsonValue({ maxDepth: 4 }),
  fc.constant(null),
  fc.integer(),
  fc.boolean(),
  fc.array(hostileString, { maxLength: 3 }),
);
const deepJson = fc.integer({ min: 1, max: 3000 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth));

const body = fc.oneof(
  // JSON objects over the real field names, with hostile values.
  fc.dictionary(fc.constantFrom(...FIELDS), jsonValue, { maxKeys: 6 }).map((object) => ({ type: 'application/json', text: JSON.stringify(object) })),
  // Arbitrary JSON of arbitrary shape (arrays, scalars, nested).
  fc.jsonValue({ maxDepth: 6 }).map((value) => ({ type: 'application/json', text: JSON.stringify(value) ?? 'null' })),
  deepJson.map((text) => ({ type: 'application/json', text })),
  fc
    .constantFrom('{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', '{bad json', '[]', '"str"', '', '{"a":1,"a":2}')
    .map((text) => ({ type: 'application/json', text })),
  // Form bodies, including duplicated parameters and bracket syntax.
  fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...FIELDS), fc.constantFrom('a[b]', 'grant_type[]', '__proto__[x]'), hostileString), hostileString), {
      maxLength: 8,
    })
    .map((pairs) => ({
      type: 'application/x-www-form-urlencoded',
      text: pairs.map(([key, value]) => `${encode(key)}=${encode(value)}`).join('&'),
    })),
  fc.string({ maxLength: 200 }).map((text) => ({ type: 'application/x-www-form-urlencoded', text })),
  // Wrong or odd content types.
  fc
    .tuple(
      fc.constantFrom(
        'text/plain',
        'application/xml',
        'multipart/form-data; boundary=x',
        'application/json; charset=latin1',
        'application/json; charset=utf-16',
        'application/x-www-form-urlencoded; charset=klingon',
        'application/octet-stream',
        '',
      ),
      fc.string({ maxLength: 100 }),
    )
    .map(([type, text]) => ({ type, text })),
);

const printable = fc.string({ minLength: 0, maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));
const authorization = fc.option(
  fc.oneof(
    fc.constant(`Basic ${Buffer.from(`demo-service:${CLIENT_SECRET}`).toString('base64')}`),
    printable.map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
    printable.map((s) => `Basic ${s}`),
    printable.map((s) => `Bearer ${s}`),
    fc.constantFrom(
      'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
      'Bearer a.b.c',
      'Basic',
      'Bearer',
      'Digest x',
      `Basic ${Buffer.from(':').toString('base64')}`,
    ),
  ),
  { nil: undefined },
);
const cookie = fc.option(
  fc.oneof(
    printable.map((s) => `refresh_token=${s}`),
    printable,
  ),
  { nil: undefined },
);
const origin = fc.option(fc.constantFrom('http://auth.test', 'https://evil.test', 'null'), { nil: undefined });
// The body is never actually compressed: every encoding but identity must fail cleanly.
// One request in eight carries one, so the others still reach the handlers.
const contentEncoding = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 7 },
  { arbitrary: fc.constantFrom('identity', 'gzip', 'deflate', 'br', 'zstd', 'compress', 'gzip, br', 'x'), weight: 1 },
);

describe('fuzzing the POST endpoints', () => {
  it(`never answers 5xx and always speaks the error format (seed ${SEED}, ${RUNS} requests)`, async () => {
    console.log(`fuzz: seed ${SEED}, ${RUNS} requests (FUZZ_SEED / FUZZ_RUNS to change)`);
    let sent = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENDPOINTS, 'DELETE /auth/sessions'),
        body,
        authorization,
        cookie,
        origin,
        contentEncoding,
        async (endpoint, payload, auth, cookieHeader, originHeader, encoding) => {
          const [method, path] = endpoint.startsWith('DELETE ') ? ['DELETE', `/auth/sessions/${encode(payload.text.slice(0, 40))}`] : ['POST', endpoint];
          const headers: Record<string, string> = {};
          if (payload.type) headers['content-type'] = payload.type;
          if (auth !== undefined) headers.authorization = auth;
          if (cookieHeader !== undefined) headers.cookie = cookieHeader;
          if (originHeader !== undefined) headers.origin = originHeader;
          if (encoding !== undefined) headers['content-encoding'] = encoding;
          const res = await fetch(`${base}${path}`, { method, headers, body: payload.text });
          sent += 1;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const text = await res.text();
          expect(res.status, `${method} ${path} ${payload.type} ${payload.text.slice(0, 200)} → ${text.slice(0, 200)}`).toBeLessThan(500);
          if (res.status === 204) return;
          const parsed = JSON.parse(text) as Record<string, unknown>;
          if (res.status >= 400) {
            expect(parsed).toEqual({ error: expect.any(String), error_description: expect.any(String) });
            // RFC 6749 §5.2's character set, whatever the request echoed back.
            expect(parsed.error_description).toMatch(/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/);
            expect(text).not.toMatch(/\bat .+:\d+:\d+/);
          }
        },
      ),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    console.log(`fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
    expect(sent).toBeGreaterThanOrEqual(2000);

    // Still healthy, and nothing was lost.
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(survivor) });
    expect(login.status).toBe(200);
    const demo = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', client_id: 'demo-app', username: 'demo@example.com', password: USER_PASSWORD }),
    });
    expect(demo.status).toBe(200);

    const logged = service.logs.text();
    for (const secret of [CLIENT_SECRET, USER_PASSWORD, survivor.password]) expect(logged).not.toContain(secret);
  }, 300_000);
});
