import { GRANT_TYPES } from '../../src/oauth/grants/index.js';
import { createServer, type Server } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { jwksRoute, metadataRoute } from '../../src/http/routes/well-known.js';
import { loadKeyRing, rotateKeys, type KeyRing } from '../../src/keys/index.js';
import { removeTempDirs, tempKeysDir, TIMINGS } from './helpers.js';

const ISSUER = 'https://auth.example.test';

let ring: KeyRing;
let rsaRing: KeyRing;
let server: Server;

beforeAll(async () => {
  const ecDir = await tempKeysDir();
  await rotateKeys({ dir: ecDir, clock: manualClock(), production: false, ...TIMINGS, alg: 'ES256' });
  ring = await loadKeyRing(ecDir, { production: false });
  const rsaDir = await tempKeysDir();
  await rotateKeys({ dir: rsaDir, clock: manualClock(), production: false, ...TIMINGS, alg: 'RS256' });
  rsaRing = await loadKeyRing(rsaDir, { production: false });

  const keys = { current: () => ring };
  const router = new Router();
  router.get('/.well-known/jwks.json', jwksRoute(keys, 300));
  router.get('/.well-known/oauth-authorization-server', metadataRoute({ issuer: ISSUER, keys, scopes: ['openid', 'profile'], grantTypes: GRANT_TYPES }));
  const app = new Koa();
  app.use(router.routes());
  server = createServer(app.callback());
});
afterAll(async () => {
  server.close();
  await removeTempDirs();
});

describe('GET /.well-known/jwks.json', () => {
  it('serves the public keys with caching headers and a strong ETag', async () => {
    const res = await request(server).get('/.well-known/jwks.json').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/jwk-set\+json/);
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.headers.etag).toBe(ring.jwks.etag);
    expect(res.headers.etag).toMatch(/^"/);
    const body = JSON.parse(res.text) as { keys: Record<string, unknown>[] };
    expect(body.keys.map((key) => key.kid)).toEqual(ring.keys.map((key) => key.kid));
    for (const key of body.keys) expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });

  it('answers 304 to If-None-Match with the current ETag (strong or weak form), 200 otherwise', async () => {
    const etag = ring.jwks.etag;
    const notModified = await request(server).get('/.well-known/jwks.json').set('If-None-Match', etag).expect(304);
    expect(notModified.text).toBe('');
    expect(notModified.headers.etag).toBe(etag);
    expect(notModified.headers['cache-control']).toBe('public, max-age=300');
    await request(server).get('/.well-known/jwks.json').set('If-None-Match', `"other", W/${etag}`).expect(304);
    await request(server).get('/.well-known/jwks.json').set('If-None-Match', '"stale"').expect(200);
  });

  it('changes body and ETag when the ring changes', async () => {
    const before = ring;
    ring = rsaRing;
    try {
      const res = await request(server).get('/.well-known/jwks.json').set('If-None-Match', before.jwks.etag).expect(200);
      expect(res.headers.etag).toBe(rsaRing.jwks.etag);
      expect(res.headers.etag).not.toBe(before.jwks.etag);
      expect((JSON.parse(res.text) as { keys: { kty: string }[] }).keys[0]!.kty).toBe('RSA');
    } finally {
      ring = before;
    }
  });
});

describe('GET /.well-known/oauth-authorization-server', () => {
  it('describes the endpoints, auth methods and signing algorithms (RFC 8414)', async () => {
    const res = await request(server).get('/.well-known/oauth-authorization-server').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/oauth/authorize`,
      token_endpoint: `${ISSUER}/oauth/token`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      scopes_supported: ['openid', 'profile'],
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      pushed_authorization_request_endpoint: `${ISSUER}/oauth/par`,
      grant_types_supported: ['authorization_code', 'password', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      revocation_endpoint: `${ISSUER}/oauth/revoke`,
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      introspection_endpoint: `${ISSUER}/oauth/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      access_token_signing_alg_values_supported: ['ES256'],
    });
    await request(server).get('/.well-known/oauth-authorization-server').set('If-None-Match', res.headers.etag!).expect(304);
  });

  it('follows the ring: the algorithms change with it', async () => {
    const before = ring;
    ring = rsaRing;
    try {
      const res = await request(server).get('/.well-known/oauth-authorization-server').expect(200);
      expect(res.body.access_token_signing_alg_values_supported).toEqual(['RS256']);
    } finally {
      ring = before;
    }
  });
});
