import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import request from 'supertest';
import { expect } from 'vitest';
import type { TestService } from './app.js';
import { USER_EMAIL, USER_PASSWORD } from './app.js';

export function expectOAuthError(res: { status: number; body: unknown }, status: number, code: string): void {
  expect({ status: res.status, body: res.body }).toEqual({ status, body: { error: code, error_description: expect.any(String) } });
}

/** Verifies an access token as a resource server would: against the served JWKS. */
export async function verifyWithJwks(service: TestService, token: string): Promise<{ payload: JWTPayload; header: Record<string, unknown> }> {
  const jwks = (await request(service.callback).get('/.well-known/jwks.json').expect(200)).body;
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
    issuer: service.config.issuer,
    audience: service.config.audience,
    typ: 'at+jwt',
    algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
  });
  return { payload, header: protectedHeader as Record<string, unknown> };
}

export function passwordLogin(service: TestService, overrides: Record<string, string> = {}) {
  return request(service.callback)
    .post('/oauth/token')
    .type('form')
    .send({ grant_type: 'password', client_id: 'demo-app', username: USER_EMAIL, password: USER_PASSWORD, ...overrides });
}

export function refreshGrant(service: TestService, refreshToken: string, overrides: Record<string, string> = {}) {
  return request(service.callback)
    .post('/oauth/token')
    .type('form')
    .send({ grant_type: 'refresh_token', client_id: 'demo-app', refresh_token: refreshToken, ...overrides });
}

export function introspect(service: TestService, token: string) {
  return request(service.callback).post('/oauth/introspect').set('Authorization', service.basic).type('form').send({ token });
}
