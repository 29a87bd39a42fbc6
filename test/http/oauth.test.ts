/**
 * The OAuth endpoints through HTTP, with users and clients in MongoDB (the harness's
 * backend) and refresh families, denylist and rate limits on a real Redis.
 */
import { generateKeyPair, SignJWT } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashClientSecret } from '../../src/clients/secrets.js';
import { createMongoConnection, type MongoConnection } from '../../src/stores/mongo/connection.js';
import type { NewClient } from '../../src/stores/types.js';
import { startTestService, USER_EMAIL, type TestService } from '../support/app.js';
import { expectOAuthError, introspect, passwordLogin, refreshGrant, verifyWithJwks } from '../support/http.js';
import { testDatabaseUri } from '../support/mongo.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let service: TestService;

beforeAll(async () => {
  redis = await startTestRedis();
  // No client cache: a client changed in the database is seen by the next request.
  service = await startTestService({ REDIS_URL: redis.url, MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'oauth'), CLIENT_CACHE_TTL: '0' });
  await service.stores.clients.create({
    clientId: 'partner-app',
    name: 'Third-party app',
    type: 'confidential',
    firstParty: false,
    grantTypes: ['password', 'refresh_token', 'client_credentials'],
    scopes: ['read'],
    audiences: ['https://api.partner.test'],
    permissions: [],
    cookieMode: false,
    secretHash: hashClientSecret('partner-secret-0123456789'),
  });
  await service.stores.clients.create({
    clientId: 'other-app',
    name: 'Another first-party app',
    type: 'public',
    firstParty: true,
    grantTypes: ['password', 'refresh_token'],
    scopes: ['profile'],
    audiences: [],
    permissions: [],
    cookieMode: false,
    secretHash: undefined,
  });
});

afterAll(async () => {
  await service?.close();
  await redis?.stop();
});

const partnerBasic = `Basic ${Buffer.from('partner-app:partner-secret-0123456789').toString('base64')}`;

/** A client with no scopes, audiences or permissions; the test says what else it is. */
const scopelessClient = (client: Pick<NewClient, 'clientId' | 'type' | 'grantTypes'> & Partial<NewClient>): NewClient => ({
  name: client.clientId,
  firstParty: false,
  scopes: [],
  audiences: [],
  permissions: [],
  cookieMode: false,
  secretHash: undefined,
  ...client,
});

describe('POST /oauth/token: client_credentials', () => {
  it('issues an RFC 9068 access token to a confidential client with Basic auth, and no refresh token', async () => {
    const res = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send({ grant_type: 'client_credentials' })
      .expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 900, scope: 'read write' });
    const { payload, header } = await verifyWithJwks(service, res.body.access_token);
    expect(header).toMatchObject({ typ: 'at+jwt', alg: 'RS256', kid: expect.any(String) });
    expect(payload).toMatchObject({ iss: 'http://auth.test', sub: 'demo-service', client_id: 'demo-service', aud: 'http://auth.test', scope: 'read write' });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(payload.nbf).toBe(payload.iat);
    expect(payload.jti).toEqual(expect.any(String));
    expect(payload).not.toHaveProperty('sid');
  });

  it('refuses Basic together with a body client_id naming another client, and with a client_secret', async () => {
    const other = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send({ grant_type: 'client_credentials', client_id: 'partner-app' });
    expectOAuthError(other, 400, 'invalid_request');
    const both = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send({ grant_type: 'client_credentials', client_secret: 'x' });
    expectOAuthError(both, 400, 'invalid_request');
    // The same id in both places is one client, not two methods.
    await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send({ grant_type: 'client_credentials', client_id: 'demo-service' })
      .expect(200);
  });

  it('reads Basic credentials after any case of the scheme and one or more spaces (RFC 7235 §2.1)', async () => {
    for (const scheme of ['basic ', 'BASIC   ']) {
      const authorization = service.basic.replace(/^Basic /, scheme);
      await request(service.callback)
        .post('/oauth/token')
        .set('Authorization', authorization)
        .type('form')
        .send({ grant_type: 'client_credentials' })
        .expect(200);
    }
  });

  it('treats a parameter sent without a value as omitted (RFC 6749 §3.2), but still refuses it repeated', async () => {
    const res = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send('grant_type=client_credentials&scope=&resource=')
      .expect(200);
    expect(res.body.scope).toBe('read write');
    const repeated = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send('grant_type=client_credentials&scope=&scope=read');
    expectOAuthError(repeated, 400, 'invalid_request');
  });

  it('refuses a scope that is not single-space-separated tokens (RFC 6749 §3.3) instead of reading it as none', async () => {
    for (const scope of [' ', '   ', ' read', 'read ', 'read  write']) {
      const form = await request(service.callback)
        .post('/oauth/token')
        .set('Authorization', service.basic)
        .type('form')
        .send({ grant_type: 'client_credentials', scope });
      expectOAuthError(form, 400, 'invalid_scope');
      const json = await request(service.callback).post('/oauth/token').set('Authorization', service.basic).send({ grant_type: 'client_credentials', scope });
      expectOAuthError(json, 400, 'invalid_scope');
    }
    const repeatedToken = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send({ grant_type: 'client_credentials', scope: 'read read' })
      .expect(200);
    expect(repeatedToken.body.scope).toBe('read');
  });

  it("refreshes a session of a client with no scopes: its family's empty scope is no scope, not a malformed one", async () => {
    await service.stores.clients.create(
      scopelessClient({ clientId: 'scopeless-app', type: 'public', firstParty: true, grantTypes: ['password', 'refresh_token'] }),
    );
    const login = (await passwordLogin(service, { client_id: 'scopeless-app' }).expect(200)).body;
    const refreshed = (await refreshGrant(service, login.refresh_token, { client_id: 'scopeless-app' }).expect(200)).body;
    expect(refreshed.scope).toBe('');
    expectOAuthError(await refreshGrant(service, refreshed.refresh_token, { client_id: 'scopeless-app', scope: 'profile' }), 400, 'invalid_scope');
  });

  it('keeps the scope claim CONTRACT lists even for a client with no scopes: an empty string', async () => {
    await service.stores.clients.create(
      scopelessClient({
        clientId: 'scopeless',
        type: 'confidential',
        grantTypes: ['client_credentials'],
        secretHash: hashClientSecret('scopeless-secret-0123456789'),
      }),
    );
    const basic = `Basic ${Buffer.from('scopeless:scopeless-secret-0123456789').toString('base64')}`;
    const res = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', basic)
      .type('form')
      .send({ grant_type: 'client_credentials' })
      .expect(200);
    expect(res.body.scope).toBe('');
    expect((await verifyWithJwks(service, res.body.access_token)).payload.scope).toBe('');
    // Asking for any scope is asking for more than it has.
    expectOAuthError(
      await request(service.callback).post('/oauth/token').set('Authorization', basic).type('form').send({ grant_type: 'client_credentials', scope: 'read' }),
      400,
      'invalid_scope',
    );
  });

  it('accepts client_secret_post and a JSON body, and narrows the scope on request', async () => {
    const res = await request(service.callback)
      .post('/oauth/token')
      .send({ grant_type: 'client_credentials', client_id: 'demo-service', client_secret: 'test-service-secret-0123456789abcdef', scope: 'read' })
      .expect(200);
    expect(res.body.scope).toBe('read');
  });

  it('refuses a scope the client may not have, and an audience it may not target', async () => {
    const scope = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send({ grant_type: 'client_credentials', scope: 'read admin' });
    expectOAuthError(scope, 400, 'invalid_scope');
    expect(scope.body.error_description).toContain('admin');
    // Wherever the forbidden token stands in the list, alone or first.
    for (const asked of ['admin read', 'admin']) {
      const first = await request(service.callback)
        .post('/oauth/token')
        .set('Authorization', service.basic)
        .type('form')
        .send({ grant_type: 'client_credentials', scope: asked });
      expectOAuthError(first, 400, 'invalid_scope');
      expect(first.body.error_description).toContain('admin');
    }
    const target = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send({ grant_type: 'client_credentials', resource: 'https://elsewhere.test' });
    expectOAuthError(target, 400, 'invalid_target');
  });

  it('issues for an allowed audience (RFC 8707 resource)', async () => {
    const res = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', partnerBasic)
      .type('form')
      .send({ grant_type: 'client_credentials', resource: 'https://api.partner.test' })
      .expect(200);
    const payload = JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString());
    expect(payload.aud).toBe('https://api.partner.test');
  });

  it('takes resource more than once (RFC 8707 §2), but issues for one: two targets are invalid_target, not a silent pick', async () => {
    const token = (form: string) =>
      request(service.callback).post('/oauth/token').set('Authorization', partnerBasic).type('form').send(`grant_type=client_credentials&${form}`);
    const partner = encodeURIComponent('https://api.partner.test');
    const same = await token(`resource=${partner}&resource=${partner}`).expect(200);
    const audOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { aud: unknown }).aud;
    expect(audOf(same.body.access_token)).toBe('https://api.partner.test');
    expectOAuthError(await token(`resource=${partner}&resource=${encodeURIComponent('http://auth.test')}`), 400, 'invalid_target');
    expectOAuthError(await token(`resource=${partner}&audience=${encodeURIComponent('http://auth.test')}`), 400, 'invalid_target');
    await token(`resource=${partner}&audience=${partner}`).expect(200);
    const json = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', partnerBasic)
      .send({ grant_type: 'client_credentials', resource: ['https://api.partner.test'] })
      .expect(200);
    expect(audOf(json.body.access_token)).toBe('https://api.partner.test');
  });
});

describe('POST /oauth/token: client authentication', () => {
  const grant = { grant_type: 'client_credentials' };

  it('answers a wrong secret, an unknown client and malformed Basic with 401 invalid_client and WWW-Authenticate', async () => {
    const attempts = [
      `Basic ${Buffer.from('demo-service:wrong').toString('base64')}`,
      `Basic ${Buffer.from('nobody:secret').toString('base64')}`,
      'Basic !!!not-base64!!!',
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      'Bearer abc',
    ];
    for (const authorization of attempts) {
      const res = await request(service.callback).post('/oauth/token').set('Authorization', authorization).type('form').send(grant);
      expectOAuthError(res, 401, 'invalid_client');
      expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    }
  });

  it('refuses two authentication methods at once', async () => {
    const res = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send({ ...grant, client_secret: 'x' });
    expectOAuthError(res, 400, 'invalid_request');
  });

  it('refuses a confidential client that sends no secret, and any client with no credentials', async () => {
    expectOAuthError(
      await request(service.callback)
        .post('/oauth/token')
        .type('form')
        .send({ ...grant, client_id: 'demo-service' }),
      401,
      'invalid_client',
    );
    expectOAuthError(await request(service.callback).post('/oauth/token').type('form').send(grant), 401, 'invalid_client');
  });
});

describe('POST /oauth/token: request errors', () => {
  it('names unsupported and missing grant types, and refuses a grant the client does not have', async () => {
    expectOAuthError(
      await request(service.callback)
        .post('/oauth/token')
        .set('Authorization', service.basic)
        .type('form')
        .send({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code' }),
      400,
      'unsupported_grant_type',
    );
    expectOAuthError(await request(service.callback).post('/oauth/token').set('Authorization', service.basic).type('form').send({}), 400, 'invalid_request');
    expectOAuthError(
      await passwordLogin(service, { client_id: 'demo-service', client_secret: 'test-service-secret-0123456789abcdef' }),
      400,
      'unauthorized_client',
    );
  });

  it('refuses a grant the client record does not list, even to a first-party client the grant itself would serve', async () => {
    await service.stores.clients.create(
      scopelessClient({ clientId: 'refresh-only-first-party', type: 'public', firstParty: true, grantTypes: ['refresh_token'] }),
    );
    expectOAuthError(await passwordLogin(service, { client_id: 'refresh-only-first-party' }), 400, 'unauthorized_client');
  });

  it('refuses client_credentials to a public client even when its record lists that grant: it has no secret to prove', async () => {
    await service.stores.clients.create(scopelessClient({ clientId: 'public-with-client-credentials', type: 'public', grantTypes: ['client_credentials'] }));
    const res = await request(service.callback)
      .post('/oauth/token')
      .type('form')
      .send({ grant_type: 'client_credentials', client_id: 'public-with-client-credentials' });
    expectOAuthError(res, 400, 'unauthorized_client');
  });

  it('refuses duplicated parameters and wrongly typed JSON values, naming the field', async () => {
    const duplicate = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .type('form')
      .send('grant_type=client_credentials&scope=read&scope=write');
    expectOAuthError(duplicate, 400, 'invalid_request');
    const typed = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .send({ grant_type: 'client_credentials', scope: ['read'] });
    expectOAuthError(typed, 400, 'invalid_request');
    expect(typed.body.error_description).toMatch(/^scope/);
    const nul = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', service.basic)
      .send({ grant_type: 'client_credentials', scope: 'read\u0000' });
    expectOAuthError(nul, 400, 'invalid_request');
  });
});

describe('POST /oauth/token: password and refresh_token', () => {
  it('logs a user in through a first-party client, with roles, email and a family id', async () => {
    const res = await passwordLogin(service).expect(200);
    expect(res.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
      scope: 'profile email',
      refresh_token: expect.any(String),
    });
    const { payload } = await verifyWithJwks(service, res.body.access_token);
    expect(payload).toMatchObject({ email: USER_EMAIL, roles: ['admin'], client_id: 'demo-app', sid: expect.any(String) });
    // The refresh token names its family, which is the access token's `sid`.
    expect(res.body.refresh_token.startsWith(`${payload.sid as string}.`)).toBe(true);
  });

  it('gives an unknown email and a wrong password the same answer', async () => {
    const wrong = await passwordLogin(service, { password: 'not the password' });
    const unknown = await passwordLogin(service, { username: 'nobody@example.com', password: 'not the password' });
    expectOAuthError(wrong, 400, 'invalid_grant');
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.body).toEqual(wrong.body);
  });

  it('refuses the password grant to a client that is not first-party', async () => {
    const res = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', partnerBasic)
      .type('form')
      .send({ grant_type: 'password', username: USER_EMAIL, password: 'whatever-password' });
    expectOAuthError(res, 400, 'unauthorized_client');
  });

  it('rotates the refresh token on every use and revokes the family when a rotated one comes back', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    const first = (await refreshGrant(service, login.refresh_token).expect(200)).body;
    expect(first.refresh_token).not.toBe(login.refresh_token);
    const second = (await refreshGrant(service, first.refresh_token).expect(200)).body;

    const reuse = await refreshGrant(service, login.refresh_token);
    expectOAuthError(reuse, 400, 'invalid_grant');
    // The newest token died with the family, and so did the family's access tokens.
    expectOAuthError(await refreshGrant(service, second.refresh_token), 400, 'invalid_grant');
    expect((await introspect(service, second.access_token).expect(200)).body).toEqual({ active: false });
  });

  it('of 10 concurrent refreshes with one token (REFRESH_REUSE_GRACE=10s, the default), all get the same refresh token and their own access token', async () => {
    expect(service.config.refreshReuseGrace).toBe(10);
    const login = (await passwordLogin(service).expect(200)).body;
    const answers = await Promise.all(Array.from({ length: 10 }, () => refreshGrant(service, login.refresh_token)));
    expect(answers.map((res) => res.status)).toEqual(Array.from({ length: 10 }, () => 200));
    const refreshTokens = new Set(answers.map((res) => res.body.refresh_token as string));
    expect(refreshTokens.size).toBe(1);
    const [next] = refreshTokens as Set<string>;
    expect(next).not.toBe(login.refresh_token);
    const accessTokens = new Set(answers.map((res) => res.body.access_token as string));
    expect(accessTokens.size).toBe(10);
    for (const token of accessTokens) expect((await introspect(service, token).expect(200)).body).toMatchObject({ active: true });
    // One live token: the shared successor, which carries on.
    expect((await introspect(service, login.refresh_token).expect(200)).body).toEqual({ active: false });
    await refreshGrant(service, next!).expect(200);
  });

  describe('with REFRESH_REUSE_GRACE=0s', () => {
    let strict: TestService;
    beforeAll(async () => {
      strict = await startTestService({ REDIS_URL: redis.url, MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'oauth-no-grace'), REFRESH_REUSE_GRACE: '0s' });
    });
    afterAll(() => strict?.close());

    it('of 10 concurrent refreshes with one token, one gets a new pair and the family dies with the rest', async () => {
      const login = (await passwordLogin(strict).expect(200)).body;
      const answers = await Promise.all(Array.from({ length: 10 }, () => refreshGrant(strict, login.refresh_token)));
      const winners = answers.filter((res) => res.status === 200);
      expect(winners).toHaveLength(1);
      for (const res of answers.filter((res) => res.status !== 200)) expectOAuthError(res, 400, 'invalid_grant');
      // Reuse was detected among the losers: the winner's pair is as dead as the family.
      expectOAuthError(await refreshGrant(strict, winners[0]!.body.refresh_token), 400, 'invalid_grant');
      expect((await introspect(strict, winners[0]!.body.access_token).expect(200)).body).toEqual({ active: false });
    });
  });

  it('binds a refresh token to its client', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    expectOAuthError(await refreshGrant(service, login.refresh_token, { client_id: 'other-app' }), 400, 'invalid_grant');
    // The failed attempt by another client did not consume or revoke it.
    await refreshGrant(service, login.refresh_token).expect(200);
  });

  it('allows a narrower scope on refresh and refuses a wider one without rotating', async () => {
    const login = (await passwordLogin(service, { scope: 'profile email' }).expect(200)).body;
    expectOAuthError(await refreshGrant(service, login.refresh_token, { scope: 'profile read' }), 400, 'invalid_scope');
    // Wherever the wider token stands in the list.
    expectOAuthError(await refreshGrant(service, login.refresh_token, { scope: 'read profile' }), 400, 'invalid_scope');
    const narrow = (await refreshGrant(service, login.refresh_token, { scope: 'email' }).expect(200)).body;
    expect(narrow.scope).toBe('email');
    // The family keeps its own scope: the next refresh without a scope gets it all back.
    expect((await refreshGrant(service, narrow.refresh_token).expect(200)).body.scope).toBe('profile email');
  });

  it("refreshes for the family's own audience only (RFC 8707 §2.2): another target is invalid_target, without rotating", async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    const targets: Record<string, string>[] = [{ resource: 'https://elsewhere.test' }, { audience: 'https://elsewhere.test' }];
    for (const target of targets) {
      const refused = await refreshGrant(service, login.refresh_token, target);
      expectOAuthError(refused, 400, 'invalid_target');
    }
    // Naming the family's own audience is fine, and the refused attempts consumed nothing.
    const refreshed = (await refreshGrant(service, login.refresh_token, { resource: 'http://auth.test' }).expect(200)).body;
    expect(JSON.parse(Buffer.from(refreshed.access_token.split('.')[1], 'base64url').toString()).aud).toBe('http://auth.test');
  });

  describe('a client narrowed after its sessions began (its scopes or audiences changed in the database)', () => {
    let mongo: MongoConnection;
    beforeAll(async () => {
      mongo = createMongoConnection(service.config.mongodbUri!);
      await mongo.init();
    });
    afterAll(() => mongo?.close());
    const change = (clientId: string, fields: { scopes?: string[]; audiences?: string[] }) => mongo.models.Client.updateOne({ clientId }, { $set: fields });
    const claims = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as { scope: string; aud: string };
    const narrowable = (clientId: string): NewClient => ({
      clientId,
      name: clientId,
      type: 'public',
      firstParty: true,
      grantTypes: ['password', 'refresh_token'],
      scopes: ['profile', 'email'],
      audiences: ['https://api.narrow.test'],
      permissions: [],
      cookieMode: false,
      secretHash: undefined,
    });

    it('a refresh issues only the scopes the client still has; the family keeps its own, and a scope asked for that the client lost is invalid_scope', async () => {
      await service.stores.clients.create(narrowable('narrowed-scopes'));
      const login = (await passwordLogin(service, { client_id: 'narrowed-scopes', scope: 'profile email' }).expect(200)).body;
      await change('narrowed-scopes', { scopes: ['profile'] });
      expectOAuthError(await refreshGrant(service, login.refresh_token, { client_id: 'narrowed-scopes', scope: 'email' }), 400, 'invalid_scope');
      const narrowed = (await refreshGrant(service, login.refresh_token, { client_id: 'narrowed-scopes' }).expect(200)).body;
      expect(narrowed.scope).toBe('profile');
      expect(claims(narrowed.access_token).scope).toBe('profile');
      await change('narrowed-scopes', { scopes: [] });
      const none = (await refreshGrant(service, narrowed.refresh_token, { client_id: 'narrowed-scopes' }).expect(200)).body;
      expect(none.scope).toBe('');
      expect(claims(none.access_token).scope).toBe('');
      // Given back, the scope returns: the family was never narrowed, only what it issues.
      await change('narrowed-scopes', { scopes: ['profile', 'email'] });
      expect((await refreshGrant(service, none.refresh_token, { client_id: 'narrowed-scopes' }).expect(200)).body.scope).toBe('profile email');
    });

    it('introspects the tokens of a deleted client, or of a disabled or deleted user, as inactive', async () => {
      await service.stores.clients.create(narrowable('soon-deleted'));
      const login = (await passwordLogin(service, { client_id: 'soon-deleted' }).expect(200)).body;
      expect((await introspect(service, login.access_token).expect(200)).body.active).toBe(true);
      await mongo.models.Client.deleteOne({ clientId: 'soon-deleted' });
      expect((await introspect(service, login.access_token).expect(200)).body).toEqual({ active: false });
      expect((await introspect(service, login.refresh_token).expect(200)).body).toEqual({ active: false });

      await service.users.register({ email: 'soon-disabled@example.com', password: 'a long enough password', ip: '192.0.2.40' });
      const user = (await passwordLogin(service, { username: 'soon-disabled@example.com', password: 'a long enough password' }).expect(200)).body;
      expect((await introspect(service, user.access_token).expect(200)).body.active).toBe(true);
      await mongo.models.User.updateOne({ email: 'soon-disabled@example.com' }, { $set: { disabled: true } });
      expect((await introspect(service, user.access_token).expect(200)).body).toEqual({ active: false });
      expect((await introspect(service, user.refresh_token).expect(200)).body).toEqual({ active: false });
      // A client's own token (client_credentials) needs only its client.
      const own = (
        await request(service.callback)
          .post('/oauth/token')
          .set('Authorization', service.basic)
          .type('form')
          .send({ grant_type: 'client_credentials' })
          .expect(200)
      ).body;
      expect((await introspect(service, own.access_token).expect(200)).body.active).toBe(true);
    });

    it('a refresh for an audience the client may no longer target is invalid_grant and ends the family', async () => {
      await service.stores.clients.create(narrowable('narrowed-audience'));
      const login = (await passwordLogin(service, { client_id: 'narrowed-audience', resource: 'https://api.narrow.test' }).expect(200)).body;
      expect(claims(login.access_token).aud).toBe('https://api.narrow.test');
      await change('narrowed-audience', { audiences: [] });
      expectOAuthError(await refreshGrant(service, login.refresh_token, { client_id: 'narrowed-audience' }), 400, 'invalid_grant');
      expect((await introspect(service, login.access_token).expect(200)).body).toEqual({ active: false });
      // Ended, not paused: allowed again, the family does not come back.
      await change('narrowed-audience', { audiences: ['https://api.narrow.test'] });
      expectOAuthError(await refreshGrant(service, login.refresh_token, { client_id: 'narrowed-audience' }), 400, 'invalid_grant');
      // The default audience (AUDIENCE) is every client's: a family for it is unaffected.
      const own = (await passwordLogin(service, { client_id: 'narrowed-audience' }).expect(200)).body;
      await change('narrowed-audience', { audiences: [] });
      await refreshGrant(service, own.refresh_token, { client_id: 'narrowed-audience' }).expect(200);
    });
  });

  it('answers garbage and forged refresh tokens with invalid_grant', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    const [family] = login.refresh_token.split('.');
    for (const token of ['garbage', `${family}.0.${'A'.repeat(43)}.${'B'.repeat(22)}`, 'a'.repeat(500)]) {
      expectOAuthError(await refreshGrant(service, token), 400, 'invalid_grant');
    }
    await refreshGrant(service, login.refresh_token).expect(200);
  });
});

describe('POST /oauth/revoke (RFC 7009)', () => {
  it('ends a whole family when given a refresh token', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    await request(service.callback).post('/oauth/revoke').type('form').send({ token: login.refresh_token, client_id: 'demo-app' }).expect(200);
    expectOAuthError(await refreshGrant(service, login.refresh_token), 400, 'invalid_grant');
    expect((await introspect(service, login.access_token)).body.active).toBe(false);
  });

  it('denies an access token until it expires', async () => {
    const token = (
      await request(service.callback).post('/oauth/token').set('Authorization', service.basic).type('form').send({ grant_type: 'client_credentials' })
    ).body.access_token;
    expect((await introspect(service, token)).body.active).toBe(true);
    await request(service.callback)
      .post('/oauth/revoke')
      .set('Authorization', service.basic)
      .type('form')
      .send({ token, token_type_hint: 'access_token' })
      .expect(200);
    expect((await introspect(service, token)).body.active).toBe(false);
    const jti = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).jti;
    expect(await service.stores.denylist.isDenied(jti)).toBe(true);
  });

  it('answers 200 for unknown and malformed tokens', async () => {
    for (const token of ['nope', 'a.b.c', 'x'.repeat(300)]) {
      await request(service.callback).post('/oauth/revoke').set('Authorization', service.basic).type('form').send({ token }).expect(200);
    }
  });

  it('lets a client revoke only its own tokens', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    const res = await request(service.callback).post('/oauth/revoke').set('Authorization', partnerBasic).type('form').send({ token: login.refresh_token });
    expectOAuthError(res, 400, 'unauthorized_client');
    await refreshGrant(service, login.refresh_token).expect(200);
  });

  it('ends a family given its refresh token under the access_token hint: the hint only orders the search (RFC 7009 §2.1)', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    await request(service.callback)
      .post('/oauth/revoke')
      .type('form')
      .send({ token: login.refresh_token, token_type_hint: 'access_token', client_id: 'demo-app' })
      .expect(200);
    expectOAuthError(await refreshGrant(service, login.refresh_token), 400, 'invalid_grant');
  });

  it('lets a client holding the revoke permission revoke tokens issued to another client', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    // demo-service holds the revoke permission; the tokens are demo-app's.
    await request(service.callback).post('/oauth/revoke').set('Authorization', service.basic).type('form').send({ token: login.refresh_token }).expect(200);
    expectOAuthError(await refreshGrant(service, login.refresh_token), 400, 'invalid_grant');
    const other = (await passwordLogin(service).expect(200)).body;
    await request(service.callback)
      .post('/oauth/revoke')
      .set('Authorization', service.basic)
      .type('form')
      .send({ token: other.access_token, token_type_hint: 'access_token' })
      .expect(200);
    expect((await introspect(service, other.access_token)).body.active).toBe(false);
  });

  it('requires client authentication', async () => {
    expectOAuthError(await request(service.callback).post('/oauth/revoke').type('form').send({ token: 'x' }), 401, 'invalid_client');
  });
});

describe('POST /oauth/introspect (RFC 7662)', () => {
  it('describes an active access token with the standard members', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    const res = await introspect(service, login.access_token).expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({
      active: true,
      token_type: 'Bearer',
      iss: 'http://auth.test',
      sub: expect.any(String),
      aud: 'http://auth.test',
      client_id: 'demo-app',
      scope: 'profile email',
      exp: expect.any(Number),
      iat: expect.any(Number),
      sid: expect.any(String),
    });
  });

  it('describes a refresh token without rotating it', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    const res = await introspect(service, login.refresh_token).expect(200);
    expect(res.body).toMatchObject({ active: true, client_id: 'demo-app', sid: login.refresh_token.split('.')[0] });
    expect(res.body).not.toHaveProperty('token_type');
    // exp is the idle expiry (REFRESH_TOKEN_TTL, 7 days), earlier than the absolute one (30 days).
    expect(res.body.exp - res.body.iat).toBeGreaterThanOrEqual(7 * 86400 - 1);
    expect(res.body.exp - res.body.iat).toBeLessThanOrEqual(7 * 86400);
    await refreshGrant(service, login.refresh_token).expect(200);
  });

  it('answers active: false for garbage, foreign-issuer and wrongly signed tokens', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const foreign = await new SignJWT({ client_id: 'demo-service', scope: 'read' })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'foreign' })
      .setIssuer('https://evil.test')
      .setSubject('demo-service')
      .setAudience('http://auth.test')
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti('x')
      .sign(privateKey);
    for (const token of ['garbage', foreign, 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.']) {
      expect((await introspect(service, token).expect(200)).body).toEqual({ active: false });
    }
  });

  it('is only for confidential clients with the introspect permission', async () => {
    expectOAuthError(
      await request(service.callback).post('/oauth/introspect').set('Authorization', partnerBasic).type('form').send({ token: 'x' }),
      403,
      'access_denied',
    );
    expectOAuthError(await request(service.callback).post('/oauth/introspect').type('form').send({ token: 'x', client_id: 'demo-app' }), 403, 'access_denied');
    expectOAuthError(await request(service.callback).post('/oauth/introspect').type('form').send({ token: 'x' }), 401, 'invalid_client');
  });
});
