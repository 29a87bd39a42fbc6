/**
 * What only a clock can show, on the embedded stores with a manual clock: a code is dead
 * after its 60 s, and a pushed request_uri is its client's alone and dead after 60 s.
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';

const clock = manualClock(Date.now());
let service: TestService;
const VERIFIER = 'lifetimes-verifier-0123456789-abcdefghijklmnopqrstuvwxyz';
const REDIRECT = 'http://127.0.0.1:7001/callback';
const authorization = {
  response_type: 'code',
  client_id: 'demo-spa',
  redirect_uri: REDIRECT,
  scope: 'profile',
  state: 'st',
  code_challenge: createHash('sha256').update(VERIFIER).digest('base64url'),
  code_challenge_method: 'S256',
};

beforeAll(async () => {
  service = await startTestService({}, { clock });
  await service.stores.clients.create({
    clientId: 'other-spa',
    name: 'Other',
    type: 'public',
    firstParty: false,
    grantTypes: ['authorization_code'],
    scopes: ['profile'],
    audiences: [],
    permissions: [],
    cookieMode: false,
    redirectUris: ['http://127.0.0.1/callback'],
    secretHash: undefined,
  });
});
afterAll(async () => {
  await service?.close();
});

/** Signs in and allows: the code the browser is sent back with. */
async function code(): Promise<string> {
  const api = request(service.callback);
  const page = await api.get('/oauth/authorize').query(authorization).expect(200);
  const binding = page.headers['set-cookie']![0]!.split(';')[0]!;
  const consent = await api
    .post('/oauth/authorize/login')
    .set('Cookie', binding)
    .type('form')
    .send({ csrf: /name="csrf" value="([^"]+)"/.exec(page.text)![1]!, email: USER_EMAIL, password: USER_PASSWORD });
  // Allowed once already: the login goes straight back to the client.
  if (consent.status === 303) return new URL(consent.headers.location!).searchParams.get('code')!;
  const session = consent.headers['set-cookie']![0]!.split(';')[0]!;
  const back = await api
    .post('/oauth/authorize/consent')
    .set('Cookie', `${binding}; ${session}`)
    .type('form')
    .send({ csrf: /name="csrf" value="([^"]+)"/.exec(consent.text)![1]!, decision: 'allow' })
    .expect(303);
  return new URL(back.headers.location!).searchParams.get('code')!;
}

const exchange = (value: string) =>
  request(service.callback)
    .post('/oauth/token')
    .type('form')
    .send({ grant_type: 'authorization_code', client_id: 'demo-spa', redirect_uri: REDIRECT, code: value, code_verifier: VERIFIER });

describe('code and request_uri lifetimes', () => {
  it('takes a code up to 60 s after it was issued, and not after', async () => {
    const fresh = await code();
    clock.advance(59_000);
    await exchange(fresh).expect(200);
    const stale = await code();
    clock.advance(60_000);
    expect((await exchange(stale).expect(400)).body.error).toBe('invalid_grant');
  });

  it('gives a pushed request only to its own client, and only for 60 s', async () => {
    const push = async () => (await request(service.callback).post('/oauth/par').type('form').send(authorization).expect(201)).body.request_uri as string;
    const stolen = await push();
    const other = await request(service.callback).get('/oauth/authorize').query({ client_id: 'other-spa', request_uri: stolen }).expect(400);
    expect(other.headers.location).toBeUndefined();
    // The attempt by another client did not use it up.
    await request(service.callback).get('/oauth/authorize').query({ client_id: 'demo-spa', request_uri: stolen }).expect(200);
    const late = await push();
    clock.advance(61_000);
    const res = await request(service.callback).get('/oauth/authorize').query({ client_id: 'demo-spa', request_uri: late }).expect(400);
    expect(res.text).toContain('expired');
  });
});
