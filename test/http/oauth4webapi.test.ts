/**
 * A standard third-party OAuth client library (oauth4webapi) drives the real server over
 * HTTP, unchanged: discovery, client_credentials, password, refresh, revocation,
 * introspection, and RFC 9068 access-token validation.
 */
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEV_SCOPES } from '../../src/dev/seed.js';
import { CLIENT_SECRET, USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { startRealServer, type RealServer } from '../support/real-server.js';

let real: RealServer;
let issuer: URL;
let as: oauth.AuthorizationServer;
// The test server speaks plain http on loopback; oauth4webapi requires opting in to that.
const insecure = { [oauth.allowInsecureRequests]: true } as const;

const service: oauth.Client = { client_id: 'demo-service' };
const serviceAuth = oauth.ClientSecretBasic(CLIENT_SECRET);
const app: oauth.Client = { client_id: 'demo-app' };

beforeAll(async () => {
  real = await startRealServer(inject('mongoUri'), 'o4w');
  issuer = real.issuer;
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
});

afterAll(async () => {
  await real?.stop();
});

async function validate(accessToken: string) {
  const request = new Request(`${issuer.origin}/api`, { headers: { authorization: `Bearer ${accessToken}` } });
  return oauth.validateJwtAccessToken(as, request, issuer.origin, insecure);
}

describe('oauth4webapi against the server', () => {
  it('discovers the RFC 8414 metadata', () => {
    expect(as).toMatchObject({
      issuer: issuer.origin,
      token_endpoint: `${issuer.origin}/oauth/token`,
      revocation_endpoint: `${issuer.origin}/oauth/revoke`,
      introspection_endpoint: `${issuer.origin}/oauth/introspect`,
      jwks_uri: `${issuer.origin}/.well-known/jwks.json`,
      grant_types_supported: ['authorization_code', 'password', 'refresh_token', 'client_credentials'],
      scopes_supported: [...DEV_SCOPES],
      authorization_endpoint: `${issuer.origin}/oauth/authorize`,
      pushed_authorization_request_endpoint: `${issuer.origin}/oauth/par`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    });
  });

  it('runs client_credentials and validates the RFC 9068 access token', async () => {
    const response = await oauth.clientCredentialsGrantRequest(as, service, serviceAuth, { scope: 'read' }, insecure);
    const tokens = await oauth.processClientCredentialsResponse(as, service, response);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.refresh_token).toBeUndefined();
    const claims = await validate(tokens.access_token);
    expect(claims).toMatchObject({ iss: issuer.origin, sub: 'demo-service', client_id: 'demo-service', scope: 'read' });
  });

  it('runs the password grant, refresh, introspection and revocation', async () => {
    const login = await oauth.processGenericTokenEndpointResponse(
      as,
      app,
      await oauth.genericTokenEndpointRequest(as, app, oauth.None(), 'password', { username: USER_EMAIL, password: USER_PASSWORD }, insecure),
    );
    expect(login.refresh_token).toEqual(expect.any(String));
    expect((await validate(login.access_token)).roles).toEqual(['admin']);

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      app,
      await oauth.refreshTokenGrantRequest(as, app, oauth.None(), login.refresh_token!, insecure),
    );
    expect(refreshed.refresh_token).not.toBe(login.refresh_token);

    const introspection = await oauth.processIntrospectionResponse(
      as,
      service,
      await oauth.introspectionRequest(as, service, serviceAuth, refreshed.access_token, insecure),
    );
    expect(introspection).toMatchObject({ active: true, client_id: 'demo-app', token_type: 'Bearer' });

    await oauth.processRevocationResponse(await oauth.revocationRequest(as, app, oauth.None(), refreshed.refresh_token!, insecure));
    const after = await oauth.processIntrospectionResponse(
      as,
      service,
      await oauth.introspectionRequest(as, service, serviceAuth, refreshed.access_token, insecure),
    );
    expect(after.active).toBe(false);
    await expect(
      oauth.processRefreshTokenResponse(as, app, await oauth.refreshTokenGrantRequest(as, app, oauth.None(), refreshed.refresh_token!, insecure)),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('surfaces our errors as RFC 6749 errors the library understands', async () => {
    const wrong = oauth.ClientSecretBasic('not the secret');
    // RFC 6749 §5.2: a 401 carries a WWW-Authenticate challenge for the scheme the client used;
    // the library surfaces it as such, with our JSON error body intact.
    const failure = await oauth.processClientCredentialsResponse(as, service, await oauth.clientCredentialsGrantRequest(as, service, wrong, {}, insecure)).then(
      () => undefined,
      (err: unknown) => err as oauth.WWWAuthenticateChallengeError,
    );
    expect(failure).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    expect(failure!.status).toBe(401);
    expect(failure!.cause[0]!.scheme).toBe('basic');
    expect(await failure!.response.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    await expect(
      oauth.processGenericTokenEndpointResponse(
        as,
        app,
        await oauth.genericTokenEndpointRequest(as, app, oauth.None(), 'password', { username: USER_EMAIL, password: 'wrong password' }, insecure),
      ),
    ).rejects.toMatchObject({ error: 'invalid_grant', status: 400 });
  });
});
