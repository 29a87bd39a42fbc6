/**
 * Fuzzing the browser side of the code flow: GET and POST /oauth/authorize, the login and
 * consent forms and POST /oauth/par, with random and hostile parameters (repeated, huge,
 * of the wrong JSON type), bad cookies, bad or borrowed CSRF tokens and bad request_uris,
 * mixed with real ones so that requests also get past the first checks. Nothing may answer
 * 5xx, every HTML answer carries the pages' Content-Security-Policy, and afterwards a
 * normal sign-in still works.
 */
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLIENT_SECRET, startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { FormBrowser, readForm } from '../support/hosted-pages.js';
import { testDatabaseUri } from '../support/mongo.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261124);
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const REDIRECT = 'http://127.0.0.1:43117/callback';
const VERIFIER = 'fuzz-code-verifier-0123456789-abcdefghijklmnopqrstuvwxyz';

let redis: TestRedis;
let service: TestService;
let server: Server;
let base: string;
/** Real values taken from a real sign-in, so that fuzzed requests reach past the first checks. */
const real = { binding: '', session: '', loginCsrf: '', consentCsrf: '', requestUri: '', challenge: '' };

beforeAll(async () => {
  redis = await startTestRedis();
  service = await startTestService({
    REDIS_URL: redis.url,
    MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'authorize-fuzz'),
    // The fuzzer comes from one IP and must reach the handlers, not only the limiter.
    LOGIN_RATE_LIMIT: '100000/15m',
    LOGIN_IP_RATE_LIMIT: '100000/15m',
    LOGIN_ACCOUNT_RATE_LIMIT: '100000/15m',
    CLIENT_AUTH_RATE_LIMIT: '100000/15m',
    LOG_LEVEL: 'info',
  });
  server = createServer(service.callback);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

  real.challenge = await oauth.calculatePKCECodeChallenge(VERIFIER);
  const browser = new FormBrowser(base);
  const login = await browser.get(`${base}/oauth/authorize?${new URLSearchParams(validRequest())}`);
  real.loginCsrf = readForm(login.html).csrf;
  const consent = await browser.submit(login, { email: USER_EMAIL, password: USER_PASSWORD });
  real.consentCsrf = readForm(consent.html).csrf;
  real.binding = browser.cookie('authz')!;
  real.session = browser.cookie('session')!;
  const par = await fetch(`${base}/oauth/par`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'demo-spa', ...validRequest() }),
  });
  expect(par.status).toBe(201);
  real.requestUri = ((await par.json()) as { request_uri: string }).request_uri;
  expect(Object.values(real).every(Boolean)).toBe(true);
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await service?.close();
  await redis?.stop();
});

function validRequest(): Record<string, string> {
  return {
    client_id: 'demo-spa',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'profile',
    state: 'fuzz-state',
    code_challenge: real.challenge,
    code_challenge_method: 'S256',
  };
}

/** Percent-encodes UTF-8, lone surrogates included (as U+FFFD), which encodeURIComponent refuses. */
const encode = (text: string): string => [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');

const ENDPOINTS = ['GET /oauth/authorize', 'POST /oauth/authorize', 'POST /oauth/authorize/login', 'POST /oauth/authorize/consent', 'POST /oauth/par'] as const;
const FIELDS = [
  'client_id',
  'redirect_uri',
  'response_type',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'prompt',
  'max_age',
  'login_hint',
  'request_uri',
  'resource',
  'nonce',
  'response_mode',
  'request',
  'csrf',
  'email',
  'password',
  'decision',
  '__proto__',
  'constructor',
  'toString',
];

const hostile = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    '',
    '\u0000',
    '%00',
    '\uD800',
    '__proto__',
    '..',
    '"><script>alert(1)</script>',
    '${jndi:x}',
    "' OR 1=1 --",
    '{"$gt": ""}',
    'javascript:alert(1)',
    'none',
    'login consent none',
    'plain',
    'token',
    'code id_token',
    '-1',
    '1e400',
    'NaN',
  ),
  fc.constantFrom(
    'http://127.0.0.1/callback',
    'http://127.0.0.1:1/callback',
    'http://localhost:5173/callback',
    'https://evil.example/callback',
    'http://127.0.0.1.evil.example/callback',
    'http://[::1]:80/callback',
    '//evil.example',
    'http://127.0.0.1:43117/callback#x',
    'http://user:pass@127.0.0.1/callback',
  ),
  fc.constantFrom(
    'urn:ietf:params:oauth:request_uri:',
    'urn:ietf:params:oauth:request_uri:x',
    'urn:ietf:params:oauth:request_uri:../../x',
    'https://evil.example/request',
  ),
  fc.integer({ min: 1, max: 60_000 }).map((n) => 'x'.repeat(n)),
);
/** A value for `field`: usually plausible (a real one, or one of its neighbours), else hostile. */
const valueFor = (field: string) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...plausible(field)), weight: 5 },
    { arbitrary: hostile, weight: 2 },
    // A real token, one character off.
    { arbitrary: fc.constantFrom(real.loginCsrf, real.consentCsrf).map((token) => token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), weight: 1 },
  );

function plausible(field: string): string[] {
  const request = validRequest();
  switch (field) {
    case 'csrf':
      return [real.loginCsrf, real.consentCsrf, '', 'x.y', '.'];
    case 'email':
      return [USER_EMAIL, 'nobody@example.com', ''];
    case 'password':
      return [USER_PASSWORD, 'wrong', ''];
    case 'decision':
      return ['allow', 'deny', 'ALLOW', ''];
    case 'request_uri':
      return [real.requestUri, 'urn:ietf:params:oauth:request_uri:AAAA'];
    case 'prompt':
      return ['none', 'login', 'consent', 'select_account'];
    case 'max_age':
      return ['0', '60', '-1', '99999999999999999999'];
    default:
      return [Object.hasOwn(request, field) ? request[field]! : 'x'];
  }
}

/**
 * Parameters: a valid request's (often all of them, else some), with the form fields given
 * drawn values, then up to four random ones (so a name may come twice). Built once `real`
 * is known.
 */
const parameters = () => {
  const entries = Object.entries({ ...validRequest(), csrf: '', email: '', password: '', decision: '' });
  const extra = fc
    .oneof(
      fc.constantFrom(...FIELDS),
      hostile.map((name) => name.slice(0, 60)),
    )
    .chain((name) => fc.tuple(fc.constant(name), valueFor(name)));
  return fc
    .tuple(
      fc.oneof({ arbitrary: fc.constant(entries), weight: 2 }, { arbitrary: fc.subarray(entries), weight: 1 }),
      fc.oneof({ arbitrary: fc.constant([]), weight: 1 }, { arbitrary: fc.array(extra, { minLength: 1, maxLength: 4 }), weight: 2 }),
    )
    .chain(([chosen, extras]) =>
      fc
        .tuple(
          ...chosen.map(([name, value]) =>
            value ? fc.constant([name, value] as [string, string]) : valueFor(name).map((drawn) => [name, drawn] as [string, string]),
          ),
        )
        .map((first) => [...first, ...extras]),
    );
};

type Payload = { type: string | undefined; text: string };
const body = (pairs: [string, string][]): fc.Arbitrary<Payload> =>
  fc.oneof(
    { arbitrary: fc.constant({ type: 'application/x-www-form-urlencoded', text: pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&') }), weight: 6 },
    // JSON: duplicates collapse or are refused, values may take another type.
    { arbitrary: fc.constant({ type: 'application/json', text: JSON.stringify(Object.fromEntries(pairs)) }), weight: 2 },
    {
      arbitrary: fc
        .jsonValue({ maxDepth: 3 })
        .map((value) => ({ type: 'application/json', text: JSON.stringify(Object.fromEntries(pairs.map(([k], i) => [k, i === 0 ? value : pairs[i]![1]]))) })),
      weight: 1,
    },
    {
      arbitrary: fc
        .constantFrom('text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=klingon')
        .map((type) => ({ type, text: pairs.map(([k, v]) => `${k}=${v}`).join('&') })),
      weight: 1,
    },
    { arbitrary: fc.constant({ type: undefined, text: '' }), weight: 1 },
  );

const printable = fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x21-\x7e]/g, '').replace(/[;,]/g, ''));
const cookie = fc.option(
  fc.oneof(
    fc.constant(() => `authz=${real.binding}; session=${real.session}`),
    fc.constant(() => `authz=${real.binding}`),
    fc.constant(() => `session=${real.session}`),
    fc.constant(() => `authz=${real.binding}x; session=${real.session}`),
    printable.map((s) => () => `authz=${s}; session=${s}`),
    printable.map((s) => () => `session=${s}`),
    fc
      .constantFrom(
        'authz=; session=',
        'authz',
        '=',
        ';;;',
        'authz=a=b=c',
        `session=${'s'.repeat(8000)}`,
        '__Host-session=x',
        'session=%00',
        'authz=a; authz=b',
      )
      .map((s) => () => s),
  ),
  { nil: undefined },
);
const authorization = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 2 },
  {
    arbitrary: fc.oneof(
      fc.constant(`Basic ${Buffer.from(`demo-service:${CLIENT_SECRET}`).toString('base64')}`),
      fc.constant(`Basic ${Buffer.from('demo-spa:').toString('base64')}`),
      printable.map((s) => `Basic ${Buffer.from(s).toString('base64')}`),
      printable.map((s) => `Bearer ${s}`),
    ),
    weight: 1,
  },
);

describe('fuzzing the authorize endpoints and the hosted forms', () => {
  it(`never answers 5xx, and every page carries its CSP (seed ${SEED}, ${RUNS} requests)`, async () => {
    console.log(`authorize fuzz: seed ${SEED}, ${RUNS} requests (FUZZ_SEED / FUZZ_RUNS to change)`);
    let sent = 0;
    const statuses = new Map<number, number>();
    const request = fc
      .constantFrom(...ENDPOINTS)
      .chain((endpoint) => parameters().chain((pairs) => fc.tuple(fc.constant(endpoint), fc.constant(pairs), body(pairs))));
    await fc.assert(
      fc.asyncProperty(request, cookie, authorization, async ([endpoint, pairs, payload], cookieHeader, auth) => {
        const [method, path] = endpoint.split(' ') as [string, string];
        const headers: Record<string, string> = {};
        if (cookieHeader !== undefined) headers.cookie = cookieHeader();
        if (auth !== undefined) headers.authorization = auth;
        let url = `${base}${path}`;
        let init: RequestInit = { method, headers, redirect: 'manual' };
        if (method === 'GET') url += `?${pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')}`;
        else {
          if (payload.type) headers['content-type'] = payload.type;
          init = { ...init, body: payload.text };
        }
        const res = await fetch(url, init);
        const text = await res.text();
        sent += 1;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const described = `${endpoint} cookie=${headers.cookie?.slice(0, 80)} ${JSON.stringify(pairs).slice(0, 400)} (${payload.type}) → ${res.status} ${text.slice(0, 300)}`;
        expect(res.status, described).toBeLessThan(500);
        if ((res.headers.get('content-type') ?? '').includes('text/html')) {
          expect(res.headers.get('content-security-policy'), described).toMatch(/^default-src 'none'; .*frame-ancestors 'none'/);
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    console.log(`authorize fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
    expect(sent).toBeGreaterThanOrEqual(RUNS);
    // The fuzz reached past the first checks: pages, redirects after a form, pushed requests.
    for (const status of [200, 201, 302, 303, 400]) expect(statuses.get(status) ?? 0, `status ${status}`).toBeGreaterThan(0);

    // Still healthy: a normal sign-in from a new browser gets its code.
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const browser = new FormBrowser(base);
    const login = await browser.get(`${base}/oauth/authorize?${new URLSearchParams({ ...validRequest(), prompt: 'consent' })}`);
    const consent = await browser.submit(login, { email: USER_EMAIL, password: USER_PASSWORD });
    const back = await browser.submit(consent, { decision: 'allow' });
    expect(back.status).toBe(303);
    expect(new URL(back.location!).searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  }, 600_000);
});
