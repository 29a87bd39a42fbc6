/**
 * openid-client (panva's certified relying-party library) as the judge of the OpenID
 * Connect flows, with no option at all: the authority is behind TLS as in production (a
 * test certificate every test process trusts, `test/support/tls.ts`), so openid-client's
 * https-only default holds: discovery, code + PKCE + nonce (also pushed), ID token
 * validation, userinfo, refresh with a new ID token, for a public and a confidential
 * client. Then the negatives the OpenID conformance suite checks on the relying party's
 * side, run offline: oauth4webapi refuses ID tokens signed with our key that break a rule.
 */
import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import * as oauth from 'oauth4webapi';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashClientSecret } from '../../src/clients/secrets.js';
import type { RunningServer } from '../../src/main.js';
import { USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { FormBrowser, type PageResponse } from '../support/hosted-pages.js';
import { startRealServer, type RealServer } from '../support/real-server.js';

let real: RealServer;
let running: RunningServer;
let issuer: URL;
const REDIRECT = 'http://127.0.0.1:43119/callback';
const WEB_SECRET = 'oidc-web-secret-0123456789abcdef0123456789';
const discover = (clientId: string, auth: client.ClientAuth = client.None(), metadata?: Partial<client.ClientMetadata>) =>
  client.discovery(issuer, clientId, metadata, auth);

beforeAll(async () => {
  // PS256 as a further ID-token alg: each RSA key is also published for it, under `<kid>~PS256`.
  real = await startRealServer(inject('mongoUri'), 'openid-client', { ID_TOKEN_SIGNING_ALGS: 'RS256,PS256' }, { tls: true });
  ({ running, issuer } = real);
  await running.service.stores.clients.create({
    clientId: 'oidc-web',
    name: 'OIDC web app',
    type: 'confidential',
    firstParty: false,
    grantTypes: ['authorization_code', 'refresh_token'],
    scopes: ['openid', 'profile', 'email'],
    audiences: [],
    permissions: [],
    cookieMode: false,
    redirectUris: [REDIRECT],
    secretHash: hashClientSecret(WEB_SECRET),
  });
  await running.service.stores.clients.create({
    clientId: 'oidc-pss',
    name: 'OIDC app registered for PS256',
    type: 'public',
    firstParty: false,
    grantTypes: ['authorization_code', 'refresh_token'],
    scopes: ['openid', 'profile', 'email'],
    audiences: [],
    permissions: [],
    cookieMode: false,
    redirectUris: [REDIRECT],
    idTokenSignedResponseAlg: 'PS256',
    secretHash: undefined,
  });
});

afterAll(async () => {
  await real?.stop();
});

async function signIn(browser: FormBrowser, url: URL): Promise<URL> {
  let page: PageResponse = await browser.get(url.href);
  if (page.status === 200 && page.html.includes('name="password"')) page = await browser.submit(page, { email: USER_EMAIL, password: USER_PASSWORD });
  if (page.status === 200 && page.html.includes('name="decision"')) page = await browser.submit(page, { decision: 'allow' });
  expect(page.status, page.html.slice(0, 500)).toBeOneOf([302, 303]);
  return new URL(page.location!);
}

async function codeFlow(config: client.Configuration, { par = false, browser = new FormBrowser(issuer.origin) } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const parameters = {
    redirect_uri: REDIRECT,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  };
  const url = par ? await client.buildAuthorizationUrlWithPAR(config, parameters) : client.buildAuthorizationUrl(config, parameters);
  const callback = await signIn(browser, url);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  return { tokens, nonce, browser };
}

describe('openid-client completes every flow without a custom option', () => {
  it('public client: discovery, code + PKCE + nonce, ID token, userinfo, refresh with a new ID token', async () => {
    const config = await discover('demo-spa');
    expect(config.serverMetadata().userinfo_endpoint).toBe(`${issuer.origin}/oauth/userinfo`);
    const { tokens, nonce } = await codeFlow(config);
    const claims = tokens.claims()!;
    const user = await running.service.stores.users.findByEmail(USER_EMAIL);
    expect(claims).toMatchObject({ iss: issuer.origin, sub: user!.id, aud: 'demo-spa', nonce, email: USER_EMAIL, email_verified: true });
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(info).toMatchObject({ sub: user!.id, email: USER_EMAIL });
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    const after = refreshed.claims()!;
    expect(after).toMatchObject({ sub: claims.sub, auth_time: claims.auth_time, sid: claims.sid });
    expect(refreshed.id_token).not.toBe(tokens.id_token);
  });

  it('confidential client (client_secret_basic) with a pushed request, and SSO for the second sign-in', async () => {
    const config = await discover('oidc-web', client.ClientSecretBasic(WEB_SECRET));
    const first = await codeFlow(config, { par: true });
    const again = await codeFlow(config, { browser: first.browser });
    expect(again.tokens.claims()).toMatchObject({
      sub: first.tokens.claims()!.sub,
      sid: first.tokens.claims()!.sid,
      auth_time: first.tokens.claims()!.auth_time,
    });
  });
});

describe('id_token_signed_response_alg (OIDC Registration §2)', () => {
  it('discovery lists what the RSA key signs ID tokens with: RS256 and PS256, never none; the JWKS gives each its own entry', async () => {
    const metadata = (await discover('demo-spa')).serverMetadata();
    expect(metadata.id_token_signing_alg_values_supported).toEqual(['RS256', 'PS256']);
    const { kid } = running.service.keys.current().active;
    const { keys } = (await (await fetch(new URL('/.well-known/jwks.json', issuer))).json()) as { keys: { kid: string; alg: string; n: string }[] };
    const own = keys.find((key) => key.kid === kid)!;
    const twin = keys.find((key) => key.kid === `${kid}~PS256`)!;
    expect([own.alg, twin.alg]).toEqual(['RS256', 'PS256']);
    expect(twin.n).toBe(own.n);
    for (const key of keys) expect(key.alg).toMatch(/^(RS256|PS256)$/);
  });

  it('a client registered for PS256 gets PS256 ID tokens (the refreshed one too), which openid-client and jose verify against the JWKS', async () => {
    // openid-client holds the ID token to the client's registered alg.
    const config = await discover('oidc-pss', client.None(), { id_token_signed_response_alg: 'PS256' });
    const { tokens } = await codeFlow(config);
    expect(decodeProtectedHeader(tokens.id_token!)).toMatchObject({ alg: 'PS256', typ: 'JWT', kid: `${running.service.keys.current().active.kid}~PS256` });
    const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', issuer));
    const verified = await jwtVerify(tokens.id_token!, jwks, { issuer: issuer.origin, audience: 'oidc-pss', algorithms: ['PS256'] });
    expect(verified.payload.sid).toBe(tokens.claims()!.sid);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(decodeProtectedHeader(refreshed.id_token!).alg).toBe('PS256');
    await jwtVerify(refreshed.id_token!, jwks, { issuer: issuer.origin, audience: 'oidc-pss', algorithms: ['PS256'] });
    // The alg is the registered one: a relying party holding it to RS256 refuses it.
    const expectingRs256 = await discover('oidc-pss', client.None(), { id_token_signed_response_alg: 'RS256' });
    await expect(client.refreshTokenGrant(expectingRs256, refreshed.refresh_token!)).rejects.toMatchObject({
      code: 'OAUTH_INVALID_RESPONSE',
      cause: { message: 'unexpected JWT "alg" header parameter' },
    });
  });

  it('a PS256 ID token is a valid id_token_hint: RP-initiated logout ends the session at once', async () => {
    const config = await discover('oidc-pss', client.None(), { id_token_signed_response_alg: 'PS256' });
    const { tokens, browser } = await codeFlow(config);
    const page = await browser.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }).href);
    expect(page.status).toBe(200);
    // Signed out without the confirmation form a hint we could not verify would have asked for.
    expect(page.html).not.toContain('name="decision"');
  });
});

describe('offline: what a relying party must refuse (OpenID conformance suite, RP side)', () => {
  let as: oauth.AuthorizationServer;
  const spa: oauth.Client = { client_id: 'demo-spa' };
  let genuine: Record<string, unknown>;
  let accessToken: string;

  beforeAll(async () => {
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer));
    const { tokens } = await codeFlow(await discover('demo-spa'));
    genuine = decodeJwt(tokens.id_token!);
    accessToken = tokens.access_token;
  });

  async function respond(claims: Record<string, unknown>, options: { nonce?: string } = {}) {
    const { kid, privateKey } = running.service.keys.current().signingKey();
    const idToken = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(privateKey);
    const response = new Response(JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: 900, id_token: idToken }), {
      headers: { 'content-type': 'application/json' },
    });
    return oauth.processAuthorizationCodeResponse(as, spa, response, { expectedNonce: options.nonce ?? (genuine.nonce as string) });
  }

  it('accepts the genuine claims re-signed (the cases below differ in one claim only)', async () => {
    await expect(respond(genuine)).resolves.toBeDefined();
  });

  it.each([
    ['nonce missing when one was sent', () => ({ ...genuine, nonce: undefined }), /nonce/],
    ['aud another client', () => ({ ...genuine, aud: 'other-spa' }), /aud/],
    ['aud with another client besides', () => ({ ...genuine, aud: ['demo-spa', 'other-spa'] }), /aud/],
    ['iss another issuer', () => ({ ...genuine, iss: 'https://elsewhere.example' }), /iss/],
    ['exp past', () => ({ ...genuine, exp: Math.floor(Date.now() / 1000) - 3600 }), /exp/],
  ])('oauth4webapi refuses an ID token with %s', async (_name, claims, message) => {
    await expect(respond(claims())).rejects.toThrow(message);
  });

  /**
   * What the conformance suite checks and oauth4webapi leaves to the relying party in the
   * code flow (at_hash is optional there, OIDC Core §3.1.3.8; azp and iat §3.1.3.7):
   * computed here independently of the server's code.
   */
  function conformanceProblems(claims: Record<string, unknown>, token: string): string[] {
    const digest = createHash('sha256').update(token).digest();
    const problems: string[] = [];
    if (claims.at_hash !== digest.subarray(0, 16).toString('base64url')) problems.push('at_hash');
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if ((aud.length > 1 && claims.azp === undefined) || (claims.azp !== undefined && claims.azp !== 'demo-spa')) problems.push('azp');
    if (typeof claims.iat !== 'number' || claims.iat > Date.now() / 1000 + 5) problems.push('iat');
    if (typeof claims.auth_time !== 'number' || claims.auth_time > (claims.iat as number)) problems.push('auth_time');
    return problems;
  }

  it('our ID token passes the checks oauth4webapi leaves to the relying party; a broken one does not', () => {
    expect(conformanceProblems(genuine, accessToken)).toEqual([]);
    expect(conformanceProblems({ ...genuine, at_hash: 'AAAAAAAAAAAAAAAAAAAAAA' }, accessToken)).toEqual(['at_hash']);
    expect(conformanceProblems(genuine, `${accessToken}x`)).toEqual(['at_hash']);
    expect(conformanceProblems({ ...genuine, aud: ['demo-spa', 'other-spa'] }, accessToken)).toEqual(['azp']);
    expect(conformanceProblems({ ...genuine, azp: 'other-spa' }, accessToken)).toEqual(['azp']);
    expect(conformanceProblems({ ...genuine, iat: Math.floor(Date.now() / 1000) + 3600 }, accessToken)).toEqual(['iat']);
  });
});
