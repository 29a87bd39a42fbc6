/**
 * The first-party API (`/auth/*`) through HTTP, users in MongoDB (the harness's backend),
 * families and denylist on a real Redis.
 */
import argon2 from 'argon2';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashClientSecret } from '../../src/clients/secrets.js';
import { closeRedis, connectRedis, createRedisClient } from '../../src/stores/redis/connection.js';
import type { NewClient } from '../../src/stores/types.js';
import { normaliseEmail } from '../../src/users/email.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { expectOAuthError, introspect, passwordLogin, refreshGrant } from '../support/http.js';
import { testDatabaseUri } from '../support/mongo.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let service: TestService;
const APP_ORIGIN = 'https://app.example.test';

beforeAll(async () => {
  redis = await startTestRedis();
  service = await startTestService({
    REDIS_URL: redis.url,
    MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'auth'),
    CORS_ORIGINS: APP_ORIGIN,
    // The registration race spends many taken-email attempts from one IP; that limit has its own test.
    REGISTER_RATE_LIMIT: '1000/1h',
  });
});

afterAll(async () => {
  await service?.close();
  await redis?.stop();
});

let counter = 0;
async function newUser(): Promise<{ email: string; password: string }> {
  const credentials = { email: `user${++counter}-${Date.now()}@example.com`, password: 'a long enough password' };
  await request(service.callback).post('/auth/register').send(credentials).expect(201);
  return credentials;
}

const login = (credentials: { email: string; password: string; client_id?: string }, query = '') => {
  const req = request(service.callback).post(`/auth/login${query}`).set('User-Agent', 'test-agent/1.0');
  // Cookie mode is for pages of ours: the Origin header says which page asks.
  return (query.includes('cookie') ? req.set('Origin', APP_ORIGIN) : req).send(credentials);
};
const bearer = (token: string) => `Bearer ${token}`;

/** A first-party public client like demo-app; the test says what differs. */
const firstPartyApp = (client: Pick<NewClient, 'clientId'> & Partial<NewClient>): NewClient => ({
  name: client.clientId,
  type: 'public',
  firstParty: true,
  grantTypes: ['password', 'refresh_token'],
  scopes: ['profile'],
  audiences: [],
  permissions: [],
  cookieMode: false,
  secretHash: undefined,
  ...client,
});

describe('POST /auth/register', () => {
  it('creates a user with a normalised email and never returns the hash', async () => {
    const res = await request(service.callback)
      .post('/auth/register')
      .send({ email: '  New.User@Example.COM ', password: 'twelve chars!', name: 'New' })
      .expect(201);
    expect(res.body.user).toEqual({
      id: expect.any(String),
      email: 'new.user@example.com',
      email_verified: false,
      name: 'New',
      roles: [],
      created_at: expect.any(String),
    });
    expect(JSON.stringify(res.body)).not.toMatch(/argon2|hash/i);
    await login({ email: 'NEW.user@example.com', password: 'twelve chars!' }).expect(200);
  });

  it('answers a taken email with 409', async () => {
    const res = await request(service.callback).post('/auth/register').send({ email: USER_EMAIL, password: 'whatever password' });
    expectOAuthError(res, 409, 'conflict');
  });

  it('yields exactly one 201 for 20 concurrent registrations of one email', async () => {
    const email = `race-${Date.now()}@example.com`;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => request(service.callback).post('/auth/register').send({ email, password: 'race password 1' })),
    );
    const statuses = results.map((res) => res.status).sort();
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(19);
  });

  it('checks a new address in the form it will be stored, yet still signs in an account stored before that check', async () => {
    // NFKC turns U+00B4 into a space and a combining mark: stored, the address would start with a space.
    const odd = '\u00b4bob@example.com';
    expectOAuthError(await request(service.callback).post('/auth/register').send({ email: odd, password: 'long enough' }), 400, 'invalid_request');
    // An older version stored it as it normalised it (trim, NFKC, lower case: a leading
    // space); its owner types what they always typed. The stored form is spelled out: it
    // must not drift with the code.
    const stored = ' \u0301bob@example.com';
    expect(normaliseEmail(odd)).toBe(stored);
    const password = 'an old account password';
    await service.stores.users.create({ email: stored, passwordHash: await argon2.hash(password, { type: argon2.argon2id, memoryCost: 8192, timeCost: 1 }) });
    const login = await request(service.callback).post('/auth/login').send({ email: odd, password }).expect(200);
    expect(login.body.user.email).toBe(stored);
    await passwordLogin(service, { username: odd, password }).expect(200);
  });

  it('validates each field and names it', async () => {
    const cases: [unknown, RegExp][] = [
      [{ email: 'x@example.com', password: 'short' }, /^password: must be at least 8/],
      [{ email: 'x@example.com', password: 'p'.repeat(129) }, /^password: must be at most 128/],
      [{ email: 'not-an-email', password: 'long enough' }, /^email/],
      // A fullwidth at sign becomes a second @ once normalised: checked as it will be stored.
      [{ email: 'a\uFF20b.example@d.example', password: 'long enough' }, /^email: must be an email address/],
      // 82 characters as sent, 322 once NFKC-normalised as it would be stored (U+3300 is four).
      [{ email: `a@${'\u3300'.repeat(80)}`, password: 'long enough' }, /^email: must be at most 254/],
      [{ email: ['x@example.com'], password: 'long enough' }, /^email: must be a string/],
      [{ password: 'long enough' }, /^email: is required/],
      [{ email: 'x@example.com', password: 'long enough\u0000' }, /^password/],
      ['{"__proto__": {"roles": ["admin"]}, "email": "p@example.com", "password": "long enough"}', /__proto__/],
      ['{"constructor": {"prototype": {"admin": true}}, "email": 1, "password": "long enough"}', /^email|prototype/],
    ];
    for (const [body, description] of cases) {
      const res = await request(service.callback)
        .post('/auth/register')
        .type('json')
        .send(body as object);
      expectOAuthError(res, 400, 'invalid_request');
      expect(res.body.error_description).toMatch(description);
    }
  });
});

describe('POST /auth/login', () => {
  it('refuses a first-party public client without the password grant, as /oauth/token does', async () => {
    await service.stores.clients.create({
      clientId: 'refresh-only-app',
      name: 'An app allowed only to refresh',
      type: 'public',
      firstParty: true,
      grantTypes: ['refresh_token'],
      scopes: ['profile'],
      audiences: [],
      permissions: [],
      cookieMode: false,
      secretHash: undefined,
    });
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD, client_id: 'refresh-only-app' });
    expectOAuthError(res, 400, 'unauthorized_client');
  });

  it('serves first-party public clients only: a confidential first-party client and a third-party public one are refused', async () => {
    await service.stores.clients.create(
      firstPartyApp({ clientId: 'first-party-backend', type: 'confidential', secretHash: hashClientSecret('backend-secret-0123456789') }),
    );
    await service.stores.clients.create(firstPartyApp({ clientId: 'third-party-public', firstParty: false }));
    for (const client_id of ['first-party-backend', 'third-party-public']) {
      expectOAuthError(await login({ email: USER_EMAIL, password: USER_PASSWORD, client_id }), 400, 'invalid_request');
    }
    // A refresh token the confidential client got with its secret is not refreshed here without it.
    const issued = (await passwordLogin(service, { client_id: 'first-party-backend', client_secret: 'backend-secret-0123456789' }).expect(200)).body;
    expectOAuthError(await request(service.callback).post('/auth/refresh').send({ refresh_token: issued.refresh_token }), 400, 'invalid_request');
    await refreshGrant(service, issued.refresh_token, { client_id: 'first-party-backend', client_secret: 'backend-secret-0123456789' }).expect(200);
  });

  it("refreshes another first-party public client's family too (the login client is only the first guess), and the guess uses nothing up", async () => {
    await service.stores.clients.create(firstPartyApp({ clientId: 'second-public-app' }));
    const first = (await login({ email: USER_EMAIL, password: USER_PASSWORD, client_id: 'second-public-app' }).expect(200)).body.refresh_token as string;
    const second = (await request(service.callback).post('/auth/refresh').send({ refresh_token: first }).expect(200)).body.refresh_token as string;
    // The successor rotates in turn: the guess with the login client changed nothing.
    const third = await request(service.callback).post('/auth/refresh').send({ refresh_token: second }).expect(200);
    expect(third.body.refresh_token).toEqual(expect.any(String));
    expect(third.body.access_token).toEqual(expect.any(String));
  });

  it('gives a client without the refresh_token grant no refresh token and no session', async () => {
    await service.stores.clients.create(firstPartyApp({ clientId: 'password-only-app', grantTypes: ['password'] }));
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD, client_id: 'password-only-app' }).expect(200);
    expect(res.body.refresh_token).toBeUndefined();
    expect(JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString())).not.toHaveProperty('sid');
  });

  it('returns a token response and the user', async () => {
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({
      token_type: 'Bearer',
      access_token: expect.any(String),
      refresh_token: expect.any(String),
      user: { email: USER_EMAIL, roles: ['admin'] },
    });
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('answers bad credentials with one message, whether or not the email exists', async () => {
    const wrong = await login({ email: USER_EMAIL, password: 'not the password' });
    const unknown = await login({ email: 'ghost@example.com', password: 'not the password' });
    expectOAuthError(wrong, 400, 'invalid_grant');
    expect(unknown.body).toEqual(wrong.body);
  });
});

describe('cookie mode', () => {
  it('puts the refresh token only in an HttpOnly, SameSite=Strict cookie scoped to /auth', async () => {
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200);
    expect(res.body.refresh_token).toBeUndefined();
    const cookie = res.headers['set-cookie']![0]!;
    expect(cookie).toMatch(/^refresh_token=[^;]+; /);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/auth');
    // The issuer here is http://, so no Secure; with an https issuer the flag is set (below).
    expect(cookie).not.toContain('Secure');
  });

  it('refuses a cookie-mode login from a foreign page or with no Origin (login CSRF), setting no cookie', async () => {
    for (const origin of [undefined, 'https://evil.test', 'null']) {
      const req = request(service.callback).post('/auth/login?cookie=1');
      const res = await (origin ? req.set('Origin', origin) : req).type('form').send({ email: USER_EMAIL, password: USER_PASSWORD });
      expectOAuthError(res, 403, 'access_denied');
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it('refreshes from the cookie only for an allowed Origin (CSRF defence)', async () => {
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200);
    const cookie = res.headers['set-cookie']![0]!.split(';')[0]!;
    expectOAuthError(await request(service.callback).post('/auth/refresh').set('Cookie', cookie), 403, 'access_denied');
    expectOAuthError(await request(service.callback).post('/auth/refresh').set('Cookie', cookie).set('Origin', 'https://evil.test'), 403, 'access_denied');
    // The rejected attempts did not consume the token: it is still the family's current one.
    expect((await introspect(service, cookie.split('=')[1]!).expect(200)).body).toMatchObject({ active: true });
    const refreshed = await request(service.callback).post('/auth/refresh').set('Cookie', cookie).set('Origin', APP_ORIGIN).expect(200);
    expect(refreshed.body.refresh_token).toBeUndefined();
    expect(refreshed.body.access_token).toEqual(expect.any(String));
    const rotated = refreshed.headers['set-cookie']![0]!;
    expect(rotated.split(';')[0]).not.toBe(cookie);
    expect((await introspect(service, cookie.split('=')[1]!).expect(200)).body).toEqual({ active: false });
  });

  it('5 concurrent refreshes with one cookie (tabs) all succeed and set the same new cookie, which refreshes afterwards', async () => {
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200);
    const cookie = res.headers['set-cookie']![0]!.split(';')[0]!;
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => request(service.callback).post('/auth/refresh').set('Cookie', cookie).set('Origin', APP_ORIGIN)),
    );
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200]);
    const cookies = new Set(answers.map((answer) => answer.headers['set-cookie']![0]!.split(';')[0]!));
    expect(cookies.size).toBe(1);
    const [next] = cookies as Set<string>;
    expect(next).not.toBe(cookie);
    // Each tab got its own access token, and each works.
    const accessTokens = new Set(answers.map((answer) => answer.body.access_token as string));
    expect(accessTokens.size).toBe(5);
    for (const token of accessTokens) await request(service.callback).get('/auth/me').set('Authorization', bearer(token)).expect(200);
    const after = await request(service.callback).post('/auth/refresh').set('Cookie', next!).set('Origin', APP_ORIGIN).expect(200);
    expect(after.headers['set-cookie']![0]!.split(';')[0]).not.toBe(next);
  });

  it("reads the family from Redis once per refresh, inside the rotation: the login client's family needs no read before it", async () => {
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200);
    const cookie = res.headers['set-cookie']![0]!.split(';')[0]!;
    const stats = createRedisClient({ url: redis.url });
    try {
      await connectRedis(stats);
      const gets = async () => Number(/cmdstat_get:calls=(\d+)/.exec(await stats.info('commandstats'))?.[1] ?? 0);
      await stats.config('RESETSTAT');
      await request(service.callback).post('/auth/refresh').set('Cookie', cookie).set('Origin', APP_ORIGIN).expect(200);
      // The one inside the rotation script (commandstats counts a script's calls too).
      expect(await gets()).toBe(1);
    } finally {
      await closeRedis(stats);
    }
  });

  it("refreshes for the family's own audience only, as /oauth/token does: another resource is invalid_target and uses nothing up", async () => {
    const { refresh_token: token } = (await login({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200)).body;
    expectOAuthError(
      await request(service.callback).post('/auth/refresh').send({ refresh_token: token, resource: 'https://elsewhere.test' }),
      400,
      'invalid_target',
    );
    await request(service.callback).post('/auth/refresh').send({ refresh_token: token, audience: 'http://auth.test' }).expect(200);
  });

  it('refuses a second refresh_token cookie (one planted for a parent domain), consuming neither', async () => {
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200);
    const cookie = res.headers['set-cookie']![0]!.split(';')[0]!;
    const attacker = (await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200)).headers['set-cookie']![0]!.split(';')[0]!;
    // The planted cookie has the longer path, so the browser sends it first.
    const both = await request(service.callback).post('/auth/refresh').set('Cookie', `${attacker}; ${cookie}`).set('Origin', APP_ORIGIN);
    expectOAuthError(both, 400, 'invalid_request');
    expect(both.body.error_description).toContain('2 refresh_token cookies');
    expect(both.headers['set-cookie']).toBeUndefined();
    await request(service.callback).post('/auth/refresh').set('Cookie', cookie).set('Origin', APP_ORIGIN).expect(200);
    await request(service.callback).post('/auth/refresh').set('Cookie', attacker).set('Origin', APP_ORIGIN).expect(200);
  });

  it('logs out with a planted second cookie present: the session of the Bearer token ends and the cookie is cleared', async () => {
    const mine = await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200);
    const cookie = mine.headers['set-cookie']![0]!.split(';')[0]!;
    const planted = (await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200)).headers['set-cookie']![0]!.split(';')[0]!;
    // Still only from a page of ours.
    expectOAuthError(
      await request(service.callback)
        .post('/auth/logout')
        .set('Authorization', bearer(mine.body.access_token))
        .set('Cookie', `${planted}; ${cookie}`)
        .set('Origin', 'https://evil.test'),
      403,
      'access_denied',
    );
    const out = await request(service.callback)
      .post('/auth/logout')
      .set('Authorization', bearer(mine.body.access_token))
      .set('Cookie', `${planted}; ${cookie}`)
      .set('Origin', APP_ORIGIN)
      .expect(204);
    expect(out.headers['set-cookie']![0]).toMatch(/^refresh_token=; .*Max-Age=0/);
    expectOAuthError(await request(service.callback).get('/auth/me').set('Authorization', bearer(mine.body.access_token)), 401, 'invalid_token');
    expectOAuthError(await request(service.callback).post('/auth/refresh').set('Cookie', cookie).set('Origin', APP_ORIGIN), 400, 'invalid_grant');
  });

  it('is on for a client configured for it, without ?cookie=1: the refresh token only in the cookie, and only for an allowed Origin', async () => {
    await service.stores.clients.create(firstPartyApp({ clientId: 'cookie-app', cookieMode: true }));
    const credentials = { email: USER_EMAIL, password: USER_PASSWORD, client_id: 'cookie-app' };
    expectOAuthError(await request(service.callback).post('/auth/login').send(credentials), 403, 'access_denied');
    const res = await request(service.callback).post('/auth/login').set('Origin', APP_ORIGIN).send(credentials).expect(200);
    expect(res.body.refresh_token).toBeUndefined();
    expect(res.headers['set-cookie']![0]).toMatch(/^refresh_token=[^;]+; .*HttpOnly/);
  });

  it('clears the cookie on logout', async () => {
    const res = await login({ email: USER_EMAIL, password: USER_PASSWORD }, '?cookie=1').expect(200);
    const cookie = res.headers['set-cookie']![0]!.split(';')[0]!;
    const out = await request(service.callback)
      .post('/auth/logout')
      .set('Authorization', bearer(res.body.access_token))
      .set('Cookie', cookie)
      .set('Origin', APP_ORIGIN)
      .expect(204);
    expect(out.headers['set-cookie']![0]).toMatch(/^refresh_token=; .*Max-Age=0/);
  });

  it('on https names the cookie __Host-refresh_token (Secure, Path=/), so a sibling subdomain cannot toss one in', async () => {
    const secure = await startTestService({ ISSUER: 'https://auth.test' });
    try {
      const api = request(secure.callback);
      const res = await api.post('/auth/login?cookie=1').set('Origin', 'https://auth.test').send({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200);
      const cookie = res.headers['set-cookie']![0]!;
      expect(cookie).toMatch(/^__Host-refresh_token=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
      const ours = cookie.split(';')[0]!;
      // The attacker's cookie (planted for the parent domain without the prefix) is not ours: it is ignored.
      const planted = 'refresh_token=attackers-own-session-token';
      const refreshed = await api.post('/auth/refresh').set('Origin', 'https://auth.test').set('Cookie', `${planted}; ${ours}`).expect(200);
      expect(refreshed.headers['set-cookie']![0]).toMatch(/^__Host-refresh_token=/);
      const alone = await api.post('/auth/refresh').set('Origin', 'https://auth.test').set('Cookie', planted);
      expectOAuthError(alone, 400, 'invalid_request');
      // The Origin check still applies to the prefixed cookie.
      const foreign = await api.post('/auth/refresh').set('Origin', 'https://evil.test').set('Cookie', refreshed.headers['set-cookie']![0]!.split(';')[0]!);
      expectOAuthError(foreign, 403, 'access_denied');
    } finally {
      await secure.close();
    }
  });
});

describe('Bearer-protected endpoints', () => {
  it('answer 401 with WWW-Authenticate: Bearer without a token or with a bad one', async () => {
    const none = await request(service.callback).get('/auth/me');
    expectOAuthError(none, 401, 'invalid_token');
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    const bad = await request(service.callback).get('/auth/me').set('Authorization', 'Bearer not.a.token');
    expectOAuthError(bad, 401, 'invalid_token');
    expect(bad.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('GET /auth/me returns the profile', async () => {
    const { access_token } = (await login({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200)).body;
    const res = await request(service.callback).get('/auth/me').set('Authorization', bearer(access_token)).expect(200);
    expect(res.body.user).toMatchObject({ email: USER_EMAIL, roles: ['admin'] });
    // RFC 6750 §2.1: "Bearer" 1*SP b64token, the scheme in any case.
    await request(service.callback).get('/auth/me').set('Authorization', `bearer   ${access_token}`).expect(200);
  });

  it('refuses a client_credentials token: it does not belong to a user', async () => {
    const token = (
      await request(service.callback).post('/oauth/token').set('Authorization', service.basic).type('form').send({ grant_type: 'client_credentials' })
    ).body.access_token;
    expectOAuthError(await request(service.callback).get('/auth/me').set('Authorization', bearer(token)), 401, 'invalid_token');
  });

  it('logout ends the family and denies the presented access token', async () => {
    const tokens = (await login(await newUser()).expect(200)).body;
    await request(service.callback).post('/auth/logout').set('Authorization', bearer(tokens.access_token)).expect(204);
    expectOAuthError(await request(service.callback).get('/auth/me').set('Authorization', bearer(tokens.access_token)), 401, 'invalid_token');
    expectOAuthError(await refreshGrant(service, tokens.refresh_token), 400, 'invalid_grant');
  });

  it('logout-all ends every family of the user', async () => {
    const user = await newUser();
    const sessions = await Promise.all([login(user), login(user), login(user)]);
    const res = await request(service.callback).post('/auth/logout-all').set('Authorization', bearer(sessions[0]!.body.access_token)).expect(200);
    expect(res.body.sessions_ended).toBe(3);
    for (const session of sessions) {
      expectOAuthError(await refreshGrant(service, session.body.refresh_token), 400, 'invalid_grant');
      expect((await introspect(service, session.body.access_token)).body.active).toBe(false);
    }
  });

  it('logout-all also denies the access token it was called with when that token has no session', async () => {
    await service.stores.clients.create(firstPartyApp({ clientId: 'sessionless-app', grantTypes: ['password'] }));
    const user = await newUser();
    const { access_token: token } = (await login({ ...user, client_id: 'sessionless-app' }).expect(200)).body;
    await request(service.callback).post('/auth/logout-all').set('Authorization', bearer(token)).expect(200);
    expectOAuthError(await request(service.callback).get('/auth/me').set('Authorization', bearer(token)), 401, 'invalid_token');
  });

  it('password change needs the current password, ends the other families and keeps this one', async () => {
    const user = await newUser();
    const mine = (await login(user).expect(200)).body;
    const other = (await login(user).expect(200)).body;
    expectOAuthError(
      await request(service.callback)
        .post('/auth/password')
        .set('Authorization', bearer(mine.access_token))
        .send({ current_password: 'wrong password', new_password: 'a brand new password' }),
      400,
      'invalid_request',
    );
    const res = await request(service.callback)
      .post('/auth/password')
      .set('Authorization', bearer(mine.access_token))
      .send({ current_password: user.password, new_password: 'a brand new password' })
      .expect(200);
    expect(res.body.sessions_ended).toBe(1);
    expectOAuthError(await refreshGrant(service, other.refresh_token), 400, 'invalid_grant');
    // The ended session's access token stops working too (its family is marked revoked).
    expectOAuthError(await request(service.callback).get('/auth/me').set('Authorization', bearer(other.access_token)), 401, 'invalid_token');
    await refreshGrant(service, mine.refresh_token).expect(200);
    expectOAuthError(await login(user), 400, 'invalid_grant');
    await login({ email: user.email, password: 'a brand new password' }).expect(200);
    // A client retrying the same change (its first answer lost after the hash was replaced)
    // succeeds and ends the sessions started since, rather than being told the password is wrong.
    const since = (await login({ email: user.email, password: 'a brand new password' }).expect(200)).body;
    const retry = await request(service.callback)
      .post('/auth/password')
      .set('Authorization', bearer(mine.access_token))
      .send({ current_password: user.password, new_password: 'a brand new password' })
      .expect(200);
    expect(retry.body.sessions_ended).toBeGreaterThanOrEqual(1);
    expectOAuthError(await refreshGrant(service, since.refresh_token), 400, 'invalid_grant');
    // Only the session that made the change may retry it; any other tests one guess per attempt.
    const other2 = (await login({ email: user.email, password: 'a brand new password' }).expect(200)).body;
    expectOAuthError(
      await request(service.callback)
        .post('/auth/password')
        .set('Authorization', bearer(other2.access_token))
        .send({ current_password: 'a wrong guess', new_password: 'a brand new password' }),
      400,
      'invalid_request',
    );
  });

  it('tests one guess per attempt: new_password matching is a retry only for the session that made the change', async () => {
    const user = await newUser();
    const { access_token } = (await login(user).expect(200)).body;
    // A stolen token, no change since it was issued: a wrong current_password fails even
    // though new_password is the real one (the old code answered 200 and confirmed it).
    const probe = await request(service.callback)
      .post('/auth/password')
      .set('Authorization', bearer(access_token))
      .send({ current_password: 'first wrong guess', new_password: user.password });
    expectOAuthError(probe, 400, 'invalid_request');
    await login(user).expect(200);
  });

  it('throttles guesses of current_password like logins', async () => {
    const user = await newUser();
    const { access_token } = (await login(user).expect(200)).body;
    const change = (current: string) =>
      request(service.callback)
        .post('/auth/password')
        .set('Authorization', bearer(access_token))
        .send({ current_password: current, new_password: 'another new password' });
    for (let i = 0; i < 5; i += 1) expectOAuthError(await change(`guess number ${i}`), 400, 'invalid_request');
    expectOAuthError(await change(user.password), 429, 'too_many_requests');
  });

  it('lists the live sessions with the current one marked, and ends one by id', async () => {
    const user = await newUser();
    const first = (await login(user).expect(200)).body;
    const second = (await login(user).expect(200)).body;
    const list = await request(service.callback).get('/auth/sessions').set('Authorization', bearer(first.access_token)).expect(200);
    expect(list.body.sessions).toHaveLength(2);
    const current = list.body.sessions.find((session: { current: boolean }) => session.current);
    expect(current).toMatchObject({
      id: expect.any(String),
      client_id: 'demo-app',
      user_agent: 'test-agent/1.0',
      created_at: expect.any(String),
      last_used_at: expect.any(String),
    });
    const other = list.body.sessions.find((session: { current: boolean }) => !session.current);

    // Another user cannot end it, and learns nothing about whether it exists.
    const stranger = (await login(await newUser()).expect(200)).body;
    expectOAuthError(
      await request(service.callback).delete(`/auth/sessions/${other.id}`).set('Authorization', bearer(stranger.access_token)),
      404,
      'not_found',
    );

    await request(service.callback).delete(`/auth/sessions/${other.id}`).set('Authorization', bearer(first.access_token)).expect(204);
    expectOAuthError(await refreshGrant(service, second.refresh_token), 400, 'invalid_grant');
    expect((await request(service.callback).get('/auth/sessions').set('Authorization', bearer(first.access_token))).body.sessions).toHaveLength(1);
  });
});

describe('sessions per user', () => {
  it('keeps at most REFRESH_FAMILIES_PER_USER: a login beyond it ends the oldest session', async () => {
    const capped = await startTestService({ REFRESH_FAMILIES_PER_USER: '2' });
    try {
      const tokens: string[] = [];
      for (let i = 0; i < 3; i += 1) tokens.push((await passwordLogin(capped).expect(200)).body.refresh_token);
      expectOAuthError(await refreshGrant(capped, tokens[0]!), 400, 'invalid_grant');
      await refreshGrant(capped, tokens[1]!).expect(200);
      await refreshGrant(capped, tokens[2]!).expect(200);
    } finally {
      await capped.close();
    }
  });
});
