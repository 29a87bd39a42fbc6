/**
 * The alg of an ID token (OIDC Registration §2 `id_token_signed_response_alg`): the client's,
 * when the key ring offers it: the active key's own alg, or a further RSA alg configured with
 * ID_TOKEN_SIGNING_ALGS, for which each RSA key is published again under `<kid>~<alg>`;
 * otherwise the active key's own alg. `id_token_hint` accepts what we signed under either kid.
 */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { KeyRing, loadKeyDir, loadKeyRing, rotateKeys } from '../../src/keys/index.js';
import { cryptoRandom } from '../../src/random.js';
import { createIdTokens } from '../../src/tokens/id-token.js';
import { removeTempDirs, tempKeysDir, TIMINGS } from '../keys/helpers.js';

const ISSUER = 'https://auth.example.test';
const clock = manualClock();
/** RSA with PS256 as a further ID-token alg (ID_TOKEN_SIGNING_ALGS=RS256,PS256). */
let rsa: KeyRing;
/** The same key with none configured. */
let rsaOnly: KeyRing;
let ec: KeyRing;
let ecDir: string;

beforeAll(async () => {
  const rsaDir = await tempKeysDir();
  await rotateKeys({ dir: rsaDir, clock: manualClock(), production: false, ...TIMINGS, alg: 'RS256' });
  rsa = await KeyRing.fromState(await loadKeyDir(rsaDir, { production: false }), { twinAlgs: ['RS256', 'PS256'] });
  rsaOnly = await loadKeyRing(rsaDir, { production: false });
  ecDir = await tempKeysDir();
  await rotateKeys({ dir: ecDir, clock: manualClock(), production: false, ...TIMINGS, alg: 'ES256' });
  ec = await loadKeyRing(ecDir, { production: false });
});
afterAll(() => removeTempDirs());

const idTokensOf = (ring: KeyRing) => createIdTokens({ keys: { current: () => ring }, clock, random: cryptoRandom, issuer: ISSUER, ttl: 300 });
const request = (alg: 'RS256' | 'PS256') => ({
  sub: 'user-1',
  clientId: 'rp',
  alg,
  authTime: Date.now(),
  amr: ['pwd'],
  sid: 'sid-1',
  accessToken: 'at',
  claims: {},
});
const jwks = (ring: KeyRing) => createLocalJWKSet(JSON.parse(ring.jwks.body.toString()) as JSONWebKeySet);

describe('ID token signing alg', () => {
  it('offers the active key own alg, plus the configured further RSA algs for an RSA key only', async () => {
    expect(rsa.idTokenAlgs).toEqual(['RS256', 'PS256']);
    expect(rsaOnly.idTokenAlgs).toEqual(['RS256']);
    expect(ec.idTokenAlgs).toEqual(['ES256']);
    const ecWithTwins = await KeyRing.fromState(await loadKeyDir(ecDir, { production: false }), { twinAlgs: ['RS256', 'PS256'] });
    expect(ecWithTwins.idTokenAlgs).toEqual(['ES256']);
    expect(ecWithTwins.jwks.body.equals(ec.jwks.body)).toBe(true);
  });

  it.each(['RS256', 'PS256'] as const)(
    'an RSA key signs %s when the client registered it, verifiable against the published JWKS, and takes it back as a hint',
    async (alg) => {
      const idTokens = idTokensOf(rsa);
      const token = await idTokens.issue(request(alg));
      expect(decodeProtectedHeader(token)).toMatchObject({ alg, kid: alg === 'RS256' ? rsa.active.kid : `${rsa.active.kid}~PS256` });
      await jwtVerify(token, jwks(rsa), { issuer: ISSUER, audience: 'rp', algorithms: [alg], currentDate: new Date(clock.now()) });
      expect(await idTokens.verifyHint(token)).toEqual({ sub: 'user-1', aud: 'rp', sid: 'sid-1' });
      const logout = await idTokens.logoutToken({ clientId: 'rp', alg, sub: 'user-1', sid: 'sid-1' });
      expect(decodeProtectedHeader(logout)).toMatchObject({ alg, typ: 'logout+jwt' });
    },
  );

  it('without PS256 configured, a client registered for it gets the key own alg, which a relying party holding it to PS256 refuses', async () => {
    const token = await idTokensOf(rsaOnly).issue(request('PS256'));
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', kid: rsaOnly.active.kid });
    await expect(
      jwtVerify(token, jwks(rsaOnly), { issuer: ISSUER, audience: 'rp', algorithms: ['PS256'], currentDate: new Date(clock.now()) }),
    ).rejects.toThrow();
  });

  it('an EC key signs ES256 whatever the client registered (it cannot make an RSA signature)', async () => {
    const token = await idTokensOf(ec).issue(request('PS256'));
    expect(decodeProtectedHeader(token).alg).toBe('ES256');
    await jwtVerify(token, jwks(ec), { issuer: ISSUER, audience: 'rp', algorithms: ['ES256'], currentDate: new Date(clock.now()) });
  });

  it('refuses as a hint a token in an alg we never sign ID tokens with under that kid', async () => {
    const { kid, privateKey } = rsa.signingKey();
    const signed = (alg: string, headerKid: string) =>
      new SignJWT({ iss: ISSUER, sub: 'user-1', aud: 'rp' }).setProtectedHeader({ alg, typ: 'JWT', kid: headerKid }).sign(privateKey);
    expect(await idTokensOf(rsa).verifyHint(await signed('RS384', kid))).toBeUndefined();
    // PS256 under the key's own (RS256) kid, RS256 under the PS256 twin's, an alg no RSA key signs as a twin.
    expect(await idTokensOf(rsa).verifyHint(await signed('PS256', kid))).toBeUndefined();
    expect(await idTokensOf(rsa).verifyHint(await signed('RS256', `${kid}~PS256`))).toBeUndefined();
    expect(await idTokensOf(rsa).verifyHint(await signed('RS384', `${kid}~RS384`))).toBeUndefined();
  });
});
