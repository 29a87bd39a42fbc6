/**
 * `id_token_signed_response_alg` (OIDC Registration §2) through the admin API: registered,
 * shown, defaulted to RS256, and `none` or an alg our keys cannot make refused with a clear
 * JSON error before anything is stored.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';
import { createAdminClient } from './support.js';

let service: TestService;
let adminToken: string;

beforeAll(async () => {
  service = await startTestService();
  const clientSecret = await createAdminClient(service, 'alg-admin');
  const res = await request(service.callback)
    .post('/oauth/token')
    .auth('alg-admin', clientSecret!)
    .type('form')
    .send({ grant_type: 'client_credentials', scope: 'admin' })
    .expect(200);
  adminToken = res.body.access_token as string;
});

afterAll(async () => {
  await service?.close();
});

const create = (body: Record<string, unknown>) =>
  request(service.callback)
    .post('/admin/clients')
    .set('Authorization', `Bearer ${adminToken}`)
    .send({ name: 'RP', public: true, grant_types: ['authorization_code'], redirect_uris: ['https://rp.example.com/cb'], scopes: ['openid'], ...body });

describe('id_token_signed_response_alg through the admin API', () => {
  it('registers PS256 and shows it; a client that names none gets RS256', async () => {
    const pss = await create({ client_id: 'rp-pss', id_token_signed_response_alg: 'PS256' }).expect(201);
    expect(pss.body.client.id_token_signed_response_alg).toBe('PS256');
    expect(await service.stores.clients.findById('rp-pss')).toMatchObject({ idTokenSignedResponseAlg: 'PS256' });
    const plain = await create({ client_id: 'rp-default' }).expect(201);
    expect(plain.body.client.id_token_signed_response_alg).toBe('RS256');
  });

  it.each([
    ['none', /'none' is not one of RS256, PS256 \(unsigned ID tokens are never issued\)/],
    ['HS256', /'HS256' is not one of RS256, PS256$/],
    ['ES256', /'ES256' is not one of RS256, PS256$/],
  ])('refuses %s with invalid_request (the description as the error format quotes it), and stores nothing', async (alg, message) => {
    const res = await create({ client_id: `rp-${alg.toLowerCase()}`, id_token_signed_response_alg: alg }).expect(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: expect.stringMatching(message) });
    expect(await service.stores.clients.findById(`rp-${alg.toLowerCase()}`)).toBeNull();
  });
});
