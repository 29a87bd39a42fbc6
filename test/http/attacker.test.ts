/**
 * What an attacker tries against the HTTP API, each check one that a broken defence would
 * let through: another client's tokens, the wrong kind of client, a forged Origin, a
 * disabled account, a spent login budget, a token for another audience, a forged refresh
 * token. Users and clients in MongoDB, families, denylist and rate limits on a real Redis.
 */
import mongoose, { type Connection } from 'mongoose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashClientSecret } from '../../src/clients/secrets.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { expectOAuthError, introspect, passwordLogin, refreshGrant } from '../support/http.js';
import { testDatabaseUri } from '../support/mongo.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let service: TestService;
let mongo: Connection;
const APP_ORIGIN = 'https://app.example.test';
const OTHER_AUDIENCE = 'https://api.other.test';
const rivalBasic = `Basic ${Buffer.from('rival-service:rival-secret-0123456789abcdef').toString('base64')}`;

beforeAll(async () => {
  redis = await startTestRedis();
  const mongoUri = testDatabaseUri(inject('mongoUri'), 'attacker');
  service = await startTestService({
    REDIS_URL: redis.url,
    MONGODB_URI: mongoUri,
    CORS_ORIGINS: APP_ORIGIN,
    // One proxy hop, so a test can speak from several client addresses through X-Forwarded-For.
    TRUST_PROXY_HOPS: '1',
    // Small enough that 21 uncounted refusals would lock the account if they were counted.
    LOGIN_ACCOUNT_RATE_LIMIT: '8/15m',
  });
  // No store method disables a user (an operator does it in the database): so do we.
  mongo = mongoose.createConnection(mongoUri, { serverSelectionTimeoutMS: 5_000 });
  await mongo.asPromise();
  const client = { firstParty: false, scopes: ['read'], audiences: [], cookieMode: false } as const;
  await service.stores.clients.create({
    ...client,
    clientId: 'rival-service',
    name: 'A confidential client without the revoke permission',
    type: 'confidential',
    grantTypes: ['client_credentials'],
    permissions: [],
    secretHash: hashClientSecret('rival-secret-0123456789abcdef'),
  });
  await service.stores.clients.create({
    ...client,
    clientId: 'public-introspector',
    name: 'A public client wrongly granted introspection',
    type: 'public',
    grantTypes: ['refresh_token'],
    permissions: ['introspect'],
    secretHash: undefined,
  });
  await service.stores.clients.create({
    ...client,
    clientId: 'password-only-app',
    name: 'A first-party app that never refreshes',
    type: 'public',
    firstParty: true,
    grantTypes: ['password'],
    scopes: ['profile'],
    permissions: [],
    secretHash: undefined,
  });
  await service.stores.clients.create({
    ...client,
    clientId: 'other-api-app',
    name: 'A first-party app for another API',
    type: 'public',
    firstParty: true,
    grantTypes: ['password', 'refresh_token'],
    scopes: ['profile'],
    audiences: [OTHER_AUDIENCE],
    permissions: [],
    secretHash: undefined,
  });
});

afterAll(async () => {
  await mongo?.close();
  await service?.close();
  await redis?.stop();
});

let counter = 0;
async function newUser(): Promise<{ id: string; email: string; password: string }> {
  const credentials = { email: `attacked${++counter}-${Date.now()}@example.com`, password: 'a long enough password' };
  const res = await request(service.callback).post('/auth/register').send(credentials).expect(201);
  return { id: res.body.user.id, ...credentials };
}

const login = (credentials: { email: string; password: string }) =>
  request(service.callback).post('/auth/login').send({ email: credentials.email, password: credentials.password });
const bearer = (token: string) => `Bearer ${token}`;
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

describe('another client', () => {
  it('cannot revoke an access token issued to someone else, with or without the access_token hint', async () => {
    const { access_token } = (await passwordLogin(service).expect(200)).body;
    for (const hint of [undefined, 'access_token']) {
      const res = await request(service.callback)
        .post('/oauth/revoke')
        .set('Authorization', rivalBasic)
        .type('form')
        .send({ token: access_token, ...(hint ? { token_type_hint: hint } : {}) });
      expectOAuthError(res, 400, 'unauthorized_client');
    }
    expect((await introspect(service, access_token).expect(200)).body.active).toBe(true);
  });

  it('refuses introspection to a public client even when it holds the introspect permission', async () => {
    // A public client proves nothing about who calls: its client_id is not a secret.
    const { access_token } = (await passwordLogin(service).expect(200)).body;
    const res = await request(service.callback).post('/oauth/introspect').type('form').send({ token: access_token, client_id: 'public-introspector' });
    expectOAuthError(res, 403, 'access_denied');
  });
});

describe('cookie-carrying logout', () => {
  it('is refused from a foreign page or without Origin, clearing no cookie and ending no session', async () => {
    const res = await request(service.callback)
      .post('/auth/login?cookie=1')
      .set('Origin', APP_ORIGIN)
      .send({ email: USER_EMAIL, password: USER_PASSWORD })
      .expect(200);
    const cookie = res.headers['set-cookie']![0]!.split(';')[0]!;
    for (const origin of ['https://evil.test', undefined]) {
      const req = request(service.callback).post('/auth/logout').set('Authorization', bearer(res.body.access_token)).set('Cookie', cookie);
      const out = await (origin ? req.set('Origin', origin) : req);
      expectOAuthError(out, 403, 'access_denied');
      expect(out.headers['set-cookie']).toBeUndefined();
    }
    await request(service.callback).post('/auth/refresh').set('Cookie', cookie).set('Origin', APP_ORIGIN).expect(200);
  });
});

describe('a disabled account', () => {
  const disable = (id: string) => mongo.db!.collection('users').updateOne({ _id: new mongoose.Types.ObjectId(id) }, { $set: { disabled: true } });

  it('cannot log in, and is answered exactly like a wrong password', async () => {
    const user = await newUser();
    await disable(user.id);
    // A client without the refresh grant: no family is created, so only the login's own check
    // stands between a disabled account and a token (a family's creation re-reads the user).
    const client_id = 'password-only-app';
    const viaLogin = await request(service.callback).post('/auth/login').send({ email: user.email, password: user.password, client_id });
    expectOAuthError(viaLogin, 400, 'invalid_grant');
    const wrongLogin = await request(service.callback).post('/auth/login').send({ email: user.email, password: 'not the password at all', client_id });
    expect(viaLogin.body).toEqual(wrongLogin.body);
    const viaGrant = await passwordLogin(service, { client_id, username: user.email, password: user.password, scope: 'profile' });
    expectOAuthError(viaGrant, 400, 'invalid_grant');
    expect(viaGrant.body).toEqual(
      (await passwordLogin(service, { client_id, username: user.email, password: 'not the password at all', scope: 'profile' })).body,
    );
  });

  it('cannot refresh a session started before, and that session ends', async () => {
    const user = await newUser();
    const { access_token, refresh_token } = (await passwordLogin(service, { username: user.email, password: user.password }).expect(200)).body;
    await disable(user.id);
    expectOAuthError(await refreshGrant(service, refresh_token), 400, 'invalid_grant');
    expect(await service.stores.families.isRevoked(claimsOf(access_token).sid as string)).toBe(true);
    expect((await introspect(service, access_token)).body.active).toBe(false);
  });

  it('cannot use an access token issued before at /auth/me', async () => {
    const user = await newUser();
    const { access_token } = (await login(user).expect(200)).body;
    await disable(user.id);
    expectOAuthError(await request(service.callback).get('/auth/me').set('Authorization', bearer(access_token)), 401, 'invalid_token');
  });
});

describe('login throttling', () => {
  it('does not count refused attempts against the account: hammering from one IP does not lock out another', async () => {
    const user = await newUser();
    const from = (ip: string, password: string) =>
      request(service.callback).post('/auth/login').set('X-Forwarded-For', ip).send({ email: user.email, password });
    // LOGIN_RATE_LIMIT (5) spends this account+IP budget; the account-wide one (8) has 3 left.
    for (let i = 0; i < 5; i += 1) expectOAuthError(await from('203.0.113.10', `wrong guess ${i}`), 400, 'invalid_grant');
    // 21 refusals: the account budget (8) would be spent many times over if they cost anything.
    for (let i = 0; i < 21; i += 1) expectOAuthError(await from('203.0.113.10', `hammer ${i}`), 429, 'too_many_requests');
    await from('198.51.100.20', user.password).expect(200);
  });
});

describe('password change', () => {
  it('moves passwordChangedAt forward', async () => {
    const user = await newUser();
    const { access_token } = (await login(user).expect(200)).body;
    const before = (await service.stores.users.findById(user.id))!.passwordChangedAt;
    // Registration and the change must not share a millisecond, or "forward" proves nothing.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await request(service.callback)
      .post('/auth/password')
      .set('Authorization', bearer(access_token))
      .send({ current_password: user.password, new_password: 'a brand new password' })
      .expect(200);
    const after = (await service.stores.users.findById(user.id))!.passwordChangedAt;
    expect(after.getTime()).toBeGreaterThan(before.getTime());
  });
});

describe('audience', () => {
  it('refuses at /auth/* a user token meant for another API', async () => {
    const res = await passwordLogin(service, { client_id: 'other-api-app', scope: 'profile', resource: OTHER_AUDIENCE }).expect(200);
    const token = res.body.access_token;
    // Guard: the token really is the user's, valid, and for the other audience only.
    expect(claimsOf(token)).toMatchObject({ aud: OTHER_AUDIENCE, email: USER_EMAIL });
    expect((await introspect(service, token)).body.active).toBe(true);
    expectOAuthError(await request(service.callback).get('/auth/me').set('Authorization', bearer(token)), 401, 'invalid_token');
    expectOAuthError(await request(service.callback).post('/auth/logout').set('Authorization', bearer(token)), 401, 'invalid_token');
    // The refused logout ended nothing.
    await refreshGrant(service, res.body.refresh_token, { client_id: 'other-api-app' }).expect(200);
  });
});

describe('forged refresh token', () => {
  it('is invalid_grant and revokes nothing, even on a real family id', async () => {
    const { refresh_token } = (await passwordLogin(service).expect(200)).body;
    const [family, secret, tag] = refresh_token.split('.') as [string, string, string];
    // Same shape and lengths as a real token; only the MAC is wrong (first character changed).
    const forged = `${family}.${secret}.${tag[0] === 'A' ? 'B' : 'A'}${tag.slice(1)}`;
    expect(forged).toHaveLength(refresh_token.length);
    expectOAuthError(await refreshGrant(service, forged), 400, 'invalid_grant');
    await refreshGrant(service, refresh_token).expect(200);
  });
});
