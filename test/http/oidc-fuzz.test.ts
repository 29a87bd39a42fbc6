/**
 * Fuzzing the OpenID Connect endpoints: /oauth/authorize with the OIDC parameters
 * (nonce, prompt, max_age, id_token_hint, ui_locales, claims, request), GET and POST
 * /oauth/userinfo with random credentials, and GET and POST /oauth/logout and its
 * confirmation form, with hostile values mixed with real ones (an ID token, an access
 * token, a CSRF token). 2,000 requests, none may answer 5xx.
 */
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { FormBrowser, readForm, type PageResponse } from '../support/hosted-pages.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261204);
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const REDIRECT = 'http://127.0.0.1:43122/callback';

let service: TestService;
let server: Server;
let base: string;
const real = { idToken: '', accessToken: '', challenge: '', binding: '', session: '', logoutCsrf: '' };

beforeAll(async () => {
  service = await startTestService({
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

  const verifier = oauth.generateRandomCodeVerifier();
  real.challenge = await oauth.calculatePKCECodeChallenge(verifier);
  const browser = new FormBrowser(base);
  let page: PageResponse = await browser.get(`${base}/oauth/authorize?${new URLSearchParams({ ...validRequest(), nonce: 'n' })}`);
  page = await browser.submit(page, { email: USER_EMAIL, password: USER_PASSWORD });
  page = await browser.submit(page, { decision: 'allow' });
  const code = new URL(page.location!).searchParams.get('code')!;
  const token = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'demo-spa', redirect_uri: REDIRECT, code, code_verifier: verifier }),
  });
  const tokens = (await token.json()) as { id_token: string; access_token: string };
  real.idToken = tokens.id_token;
  real.accessToken = tokens.access_token;
  const confirm = await browser.get(`${base}/oauth/logout?client_id=demo-spa`);
  real.logoutCsrf = readForm(confirm.html).csrf;
  real.binding = browser.cookie('authz')!;
  real.session = browser.cookie('session')!;
  expect(Object.values(real).every(Boolean)).toBe(true);
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await service?.close();
});

function validRequest(): Record<string, string> {
  return {
    client_id: 'demo-spa',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid profile email',
    state: 'fuzz-state',
    code_challenge: real.challenge,
    code_challenge_method: 'S256',
  };
}

const encode = (text: string): string => [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');

const hostile = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', '\u0000', '%00', '\uD800', '__proto__', '"><script>', '{"$gt": ""}', 'none', 'login none', 'select_account consent', '-1', 'NaN'),
  fc.constantFrom('eyJhbGciOiJub25lIn0.e30.', 'eyJ.eyJ.sig', 'a.b.c', '...', 'Bearer', 'Bearer ', 'Basic Zm9vOmJhcg=='),
  fc.constantFrom('http://127.0.0.1:43122/signed-out', 'https://evil.example/', '//evil.example', 'javascript:alert(1)'),
  fc.integer({ min: 1, max: 20_000 }).map((n) => 'x'.repeat(n)),
);
const realValue = () =>
  fc.constantFrom(
    real.idToken,
    real.accessToken,
    real.logoutCsrf,
    real.idToken.slice(0, -2),
    `${real.idToken}x`,
    real.accessToken.split('.').reverse().join('.'),
  );
const value = () => fc.oneof({ arbitrary: hostile, weight: 3 }, { arbitrary: realValue(), weight: 2 });

const OIDC_FIELDS = ['nonce', 'prompt', 'max_age', 'id_token_hint', 'ui_locales', 'claims', 'request', 'login_hint', 'scope', 'acr_values', 'display'];
const LOGOUT_FIELDS = ['id_token_hint', 'post_logout_redirect_uri', 'state', 'client_id', 'logout_hint', 'ui_locales', 'csrf', 'decision', 'access_token'];

const pairs = (fields: string[]) =>
  fc.array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(...fields),
        hostile.map((name) => name.slice(0, 40)),
      ),
      value(),
    ),
    { maxLength: 6 },
  );

interface Fuzzed {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly query: [string, string][];
  readonly body: [string, string][] | undefined;
  readonly json: boolean;
  readonly authorization: string | undefined;
  readonly cookies: boolean;
}

const request = fc.oneof(
  fc.record({
    method: fc.constantFrom('GET' as const),
    path: fc.constant('/oauth/authorize'),
    query: pairs(OIDC_FIELDS).map((extra) => [...Object.entries(validRequest()), ...extra]),
    body: fc.constant(undefined),
    json: fc.constant(false),
    authorization: fc.constant(undefined),
    cookies: fc.boolean(),
  }),
  fc.record({
    method: fc.constantFrom('GET' as const, 'POST' as const),
    path: fc.constant('/oauth/userinfo'),
    query: pairs(['access_token']),
    body: fc.option(pairs(['access_token']), { nil: undefined }),
    json: fc.boolean(),
    authorization: fc.option(
      fc.oneof(
        value().map((token) => `Bearer ${token}`),
        hostile,
      ),
      { nil: undefined },
    ),
    cookies: fc.constant(false),
  }),
  fc.record({
    method: fc.constantFrom('GET' as const, 'POST' as const),
    path: fc.constantFrom('/oauth/logout', '/oauth/logout/confirm'),
    query: pairs(LOGOUT_FIELDS),
    body: fc.option(pairs(LOGOUT_FIELDS), { nil: undefined }),
    json: fc.boolean(),
    authorization: fc.constant(undefined),
    cookies: fc.boolean(),
  }),
);

async function send(fuzzed: Fuzzed): Promise<Response> {
  const query = fuzzed.query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
  const headers: Record<string, string> = {};
  if (fuzzed.authorization !== undefined) headers.authorization = fuzzed.authorization.replace(/[\r\n\0]/g, '');
  if (fuzzed.cookies) headers.cookie = `authz=${real.binding}; session=${real.session}`;
  let body: string | undefined;
  if (fuzzed.method === 'POST' && fuzzed.body !== undefined) {
    headers['content-type'] = fuzzed.json ? 'application/json' : 'application/x-www-form-urlencoded';
    body = fuzzed.json ? JSON.stringify(Object.fromEntries(fuzzed.body)) : fuzzed.body.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
  }
  const url = `${base}${fuzzed.path}${fuzzed.method === 'GET' && query ? `?${query}` : ''}`;
  return fetch(url, { method: fuzzed.method, headers, body, redirect: 'manual' });
}

describe('fuzzing authorize, userinfo and logout', () => {
  it(`answers ${RUNS} fuzzed requests without a 5xx`, async () => {
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(request, async (fuzzed) => {
        let res: Response;
        try {
          res = await send(fuzzed);
        } catch (err) {
          // fetch refuses some header values itself: not a request the server saw.
          if (err instanceof TypeError) return;
          throw err;
        }
        const text = await res.text();
        if (res.status >= 500) failures.push(`${res.status} ${fuzzed.method} ${fuzzed.path} ${text.slice(0, 200)}`);
        expect(res.status, `${fuzzed.method} ${fuzzed.path}`).toBeLessThan(500);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(failures).toEqual([]);
    // Still working afterwards (a fuzzed logout may have ended the real session: a fresh browser signs in).
    const page = await new FormBrowser(base).get(`${base}/oauth/authorize?${new URLSearchParams(validRequest())}`);
    expect(page.html).toContain('name="password"');
    expect((await fetch(`${base}/oauth/userinfo`, { headers: { authorization: 'Bearer x' } })).status).toBe(401);
  }, 120_000);
});
