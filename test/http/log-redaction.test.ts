/**
 * Secrets never reach the log: requests carrying known passwords, client secrets, access
 * and refresh tokens and cookies, successful and failing, and then a search of every
 * captured line for each of those strings.
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redact } from '../../src/log.js';
import { CLIENT_SECRET, startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { captureLogs } from '../support/logs.js';

let service: TestService;
beforeAll(async () => {
  // No grace window, so that presenting a rotated refresh token again takes the reuse path.
  service = await startTestService({ LOG_LEVEL: 'trace', REFRESH_REUSE_GRACE: '0s' });
});
afterAll(async () => {
  await service?.close();
});

describe('log redaction', () => {
  it('keeps every secret used in real flows out of the captured log', async () => {
    const secrets = new Set<string>([USER_PASSWORD, CLIENT_SECRET, 'wrong-password-SECRET-1', 'registered-password-SECRET-2']);
    const api = request(service.callback);

    const login = await api.post('/auth/login?cookie=1').set('Origin', 'http://auth.test').send({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200);
    secrets.add(login.body.access_token);
    const cookie = login.headers['set-cookie']![0]!.split(';')[0]!;
    secrets.add(cookie.split('=')[1]!);

    const grant = (
      await api
        .post('/oauth/token')
        .type('form')
        .send({ grant_type: 'password', client_id: 'demo-app', username: USER_EMAIL, password: USER_PASSWORD })
        .expect(200)
    ).body;
    secrets.add(grant.access_token).add(grant.refresh_token);
    const refreshed = (
      await api.post('/oauth/token').type('form').send({ grant_type: 'refresh_token', client_id: 'demo-app', refresh_token: grant.refresh_token }).expect(200)
    ).body;
    secrets.add(refreshed.refresh_token).add(refreshed.access_token);
    // Reuse: an error path that logs a detail.
    await api.post('/oauth/token').type('form').send({ grant_type: 'refresh_token', client_id: 'demo-app', refresh_token: grant.refresh_token }).expect(400);

    await api.post('/oauth/token').set('Authorization', service.basic).type('form').send({ grant_type: 'client_credentials' }).expect(200);
    await api
      .post('/oauth/token')
      .set('Authorization', `Basic ${Buffer.from(`demo-service:${CLIENT_SECRET}x`).toString('base64')}`)
      .type('form')
      .send({ grant_type: 'client_credentials' })
      .expect(401);
    await api.post('/oauth/token').type('form').send({ grant_type: 'client_credentials', client_id: 'demo-service', client_secret: CLIENT_SECRET }).expect(200);
    await api.post('/auth/login').send({ email: USER_EMAIL, password: 'wrong-password-SECRET-1' }).expect(400);
    await api.post('/auth/register').send({ email: 'logs@example.com', password: 'registered-password-SECRET-2' }).expect(201);
    await api.post('/auth/register').send({ email: 'logs@example.com', password: 'registered-password-SECRET-2' }).expect(409);
    await api.get('/auth/me').set('Authorization', `Bearer ${login.body.access_token}`).set('Cookie', cookie).expect(200);
    await api.post('/oauth/introspect').set('Authorization', service.basic).type('form').send({ token: refreshed.access_token }).expect(200);
    await api.post('/oauth/revoke').set('Authorization', service.basic).type('form').send({ token: refreshed.refresh_token }).expect(200);
    await api
      .post('/auth/logout')
      .set('Authorization', `Bearer ${login.body.access_token}`)
      .set('Cookie', cookie)
      .set('Origin', 'http://auth.test')
      .expect(204);
    // The code flow: the login form, the sign-in cookie, the code, its verifier, a replay.
    const verifier = 'bench-verifier-SECRET-3-0123456789abcdefghijklmnopqrstuvwxyz';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const authorize = await api
      .get('/oauth/authorize')
      .query({
        response_type: 'code',
        client_id: 'demo-spa',
        redirect_uri: 'http://127.0.0.1:7000/callback',
        scope: 'profile',
        state: 's',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      })
      .expect(200);
    const binding = authorize.headers['set-cookie']![0]!.split(';')[0]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(authorize.text)![1]!;
    const consent = await api
      .post('/oauth/authorize/login')
      .set('Cookie', binding)
      .type('form')
      .send({ csrf, email: USER_EMAIL, password: USER_PASSWORD })
      .expect(200);
    const session = consent.headers['set-cookie']![0]!.split(';')[0]!;
    secrets.add(session.split('=')[1]!).add(binding.split('=')[1]!).add(verifier);
    const allowed = await api
      .post('/oauth/authorize/consent')
      .set('Cookie', `${binding}; ${session}`)
      .type('form')
      .send({ csrf: /name="csrf" value="([^"]+)"/.exec(consent.text)![1]!, decision: 'allow' })
      .expect(303);
    const code = new URL(allowed.headers.location!).searchParams.get('code')!;
    secrets.add(code);
    const exchange = { grant_type: 'authorization_code', client_id: 'demo-spa', redirect_uri: 'http://127.0.0.1:7000/callback', code, code_verifier: verifier };
    secrets.add((await api.post('/oauth/token').type('form').send(exchange).expect(200)).body.access_token);
    await api.post('/oauth/token').type('form').send(exchange).expect(400);
    await api
      .post('/oauth/authorize/login')
      .set('Cookie', binding)
      .type('form')
      .send({ csrf, email: USER_EMAIL, password: 'wrong-password-SECRET-1' })
      .expect(400);
    // Secrets in a query string and in a malformed body.
    await api.get(`/healthz?token=${grant.access_token}`).expect(200);
    await api.post('/auth/login').set('Content-Type', 'application/json').send(`{"password": "${USER_PASSWORD}", `).expect(400);

    const logged = service.logs.text();
    expect(service.logs.lines.length).toBeGreaterThan(15);
    for (const secret of secrets) {
      expect(logged.includes(secret), `secret ${secret.slice(0, 12)}… in the log`).toBe(false);
    }
  });

  it('redacts secret-bearing members at any depth, and private key material', () => {
    const { logger, text } = captureLogs();
    logger.info({
      a: { b: { c: { d: { password: 'p1', Authorization: 'Bearer t1', 'Set-Cookie': ['c1'], client_secret: 's1' } } } },
      list: [{ refresh_token: 'r1' }, { access_token: 'a1' }, { token: 't2' }],
      jwk: { kty: 'RSA', n: 'public-n', e: 'AQAB', d: 'private-d', p: 'private-p' },
      pem: '-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----',
    });
    const line = text();
    for (const secret of ['p1', 'Bearer t1', 'c1', 's1', 'r1', 'a1', 't2', 'private-d', 'private-p', 'MIIE']) expect(line).not.toContain(secret);
    expect(line).toContain('public-n');
    expect(redact({ nested: { cookie: 'x' } })).toEqual({ nested: { cookie: '[redacted]' } });
  });
});
