/**
 * The admin API (issue 22 item 1) over the embedded stores: who gets in (only our own
 * tokens with the `admin` scope, which only admin clients obtain by client_credentials),
 * what it does, and that every call is audited without a secret.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/admin/accounts.js';
import { cryptoRandom } from '../../src/random.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { createAdminClient } from './support.js';

let service: TestService;
let adminBasic: string;
let adminSecret: string;

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const token = (auth: string, scope?: string) =>
  request(service.callback)
    .post('/oauth/token')
    .set('Authorization', auth)
    .type('form')
    .send({ grant_type: 'client_credentials', ...(scope && { scope }) });

async function adminToken(): Promise<string> {
  const res = await token(adminBasic, 'admin').expect(200);
  return res.body.access_token as string;
}

beforeAll(async () => {
  service = await startTestService();
  adminSecret = await createAdminClient(service, 'test-admin');
  adminBasic = basic('test-admin', adminSecret);
});

afterAll(async () => {
  await service?.close();
});

describe('who may call the admin API', () => {
  it('an admin client obtains the admin scope by client_credentials', async () => {
    const res = await token(adminBasic, 'admin').expect(200);
    expect(res.body.scope).toBe('admin');
  });

  it('a client without the admin permission is refused the admin scope, even when its scopes list it', async () => {
    await createClient(
      { clients: service.stores.clients, random: cryptoRandom },
      {
        name: 'sneaky',
        clientId: 'sneaky',
        grants: ['client_credentials'],
        scopes: ['admin'],
        audiences: [],
        permissions: [],
        public: false,
        firstParty: false,
        cookieMode: false,
      },
    ).then(async ({ clientSecret }) => {
      const res = await token(basic('sneaky', clientSecret!), 'admin').expect(400);
      expect(res.body.error).toBe('invalid_scope');
      // Nor by default: its default scope is its scopes.
      expect((await token(basic('sneaky', clientSecret!)).expect(400)).body.error).toBe('invalid_scope');
    });
    const res = await token(service.basic, 'admin').expect(400);
    expect(res.body.error).toBe('invalid_scope');
  });

  it('refuses no token, a forged token, a user token and a client token without the admin scope', async () => {
    const keys = () => request(service.callback).get('/admin/keys');
    expect((await keys().expect(401)).body.error).toBe('invalid_token');
    const real = await adminToken();
    const [h, p] = real.split('.');
    const forged = `${h}.${p}.${'A'.repeat(86)}`;
    expect((await keys().set('Authorization', `Bearer ${forged}`).expect(401)).body.error).toBe('invalid_token');
    const user = await request(service.callback).post('/auth/login').send({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200);
    expect((await keys().set('Authorization', `Bearer ${user.body.access_token}`).expect(403)).body.error).toBe('insufficient_scope');
    const service2 = await token(service.basic, 'read').expect(200);
    expect((await keys().set('Authorization', `Bearer ${service2.body.access_token}`).expect(403)).body.error).toBe('insufficient_scope');
  });

  it('a user never obtains the admin scope, even as role admin', async () => {
    const res = await request(service.callback).post('/auth/login').send({ email: USER_EMAIL, password: USER_PASSWORD, scope: 'admin' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_scope');
  });

  it('a revoked admin token is refused', async () => {
    const at = await adminToken();
    await request(service.callback).post('/oauth/revoke').set('Authorization', adminBasic).type('form').send({ token: at }).expect(200);
    expect((await request(service.callback).get('/admin/keys').set('Authorization', `Bearer ${at}`).expect(401)).body.error).toBe('invalid_token');
  });
});

describe('clients and keys', () => {
  it('creates a client, shows its secret once, and shows it without a secret after', async () => {
    const at = await adminToken();
    const created = await request(service.callback)
      .post('/admin/clients')
      .set('Authorization', `Bearer ${at}`)
      .send({ name: 'Reports', grant_types: ['client_credentials'], scopes: ['read'] })
      .expect(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const { client, client_secret: secret } = created.body;
    expect(client).toMatchObject({ name: 'Reports', type: 'confidential', grant_types: ['client_credentials'], scopes: ['read'] });
    expect(secret).toMatch(/^\S{32,}$/);
    await token(basic(client.client_id, secret), 'read').expect(200);

    const shown = await request(service.callback).get(`/admin/clients/${client.client_id}`).set('Authorization', `Bearer ${at}`).expect(200);
    expect(shown.body.client.client_id).toBe(client.client_id);
    expect(JSON.stringify(shown.body)).not.toContain(secret);
    expect(JSON.stringify(shown.body)).not.toMatch(/secret/i);
    // The audit: actor, action, target; never the secret.
    const audits = service.logs.entries().filter((entry) => entry.msg === 'admin action');
    expect(audits).toContainEqual(
      expect.objectContaining({ audit: expect.objectContaining({ actor: 'test-admin', action: 'client.create', target: client.client_id }) }),
    );
    expect(service.logs.text()).not.toContain(secret);
    expect(service.logs.text()).not.toContain(adminSecret);
  });

  it('answers validation errors and 404s in the JSON error format', async () => {
    const at = await adminToken();
    const bad = await request(service.callback)
      .post('/admin/clients')
      .set('Authorization', `Bearer ${at}`)
      .send({ name: 'x', grant_types: ['client_credentials'], public: true })
      .expect(400);
    expect(bad.body).toEqual({ error: 'invalid_request', error_description: expect.stringContaining('client_credentials') });
    const adminPublic = await request(service.callback)
      .post('/admin/clients')
      .set('Authorization', `Bearer ${at}`)
      .send({ name: 'x', grant_types: ['password'], permissions: ['admin'], public: true, first_party: true })
      .expect(400);
    expect(adminPublic.body.error_description).toContain('admin');
    const missing = await request(service.callback).get('/admin/clients/nobody-here').set('Authorization', `Bearer ${at}`).expect(404);
    expect(missing.body.error).toBe('not_found');
  });

  it('creates a user who can then log in; the password is never echoed or logged', async () => {
    const at = await adminToken();
    const password = 'a new user password 7f3k';
    const res = await request(service.callback)
      .post('/admin/users')
      .set('Authorization', `Bearer ${at}`)
      .send({ email: 'New.User@Example.com', password, roles: ['support'] })
      .expect(201);
    expect(res.body.user).toMatchObject({ email: 'new.user@example.com', roles: ['support'] });
    expect(JSON.stringify(res.body)).not.toContain(password);
    await request(service.callback).post('/auth/login').send({ email: 'new.user@example.com', password }).expect(200);
    const again = await request(service.callback)
      .post('/admin/users')
      .set('Authorization', `Bearer ${at}`)
      .send({ email: 'new.user@example.com', password })
      .expect(409);
    expect(again.body.error).toBe('conflict');
    expect(service.logs.text()).not.toContain(password);
  });

  it('lists the keys with their states and dates', async () => {
    const res = await request(service.callback)
      .get('/admin/keys')
      .set('Authorization', `Bearer ${await adminToken()}`)
      .expect(200);
    expect(res.body.keys).toContainEqual(expect.objectContaining({ state: 'active', created_at: expect.any(String), kid: expect.any(String) }));
  });
});
