/**
 * Parity with jose: the core checks signatures with node:crypto where the kit used to call
 * jose's `jwtVerify`. For every algorithm the authority signs with, and for the tampering
 * a verifier must catch, both must reach the same verdict. The one intended difference,
 * an `iat` in the future (jose leaves it to `maxTokenAge`), has its own case below.
 */
import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { exportJWK, importJWK, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { checkAlgorithm, checkClaims, parseToken, signatureKeyFromJwk, verifySignature } from '../../packages/verifier/src/core.js';

const ISSUER = 'https://auth.example.test';
const AUDIENCE = 'https://api.example.test';
const NOW = Date.UTC(2026, 4, 1, 12, 0, 0);
const NOW_S = NOW / 1000;
const TOLERANCE = 30;

type Alg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
const pairs: Record<Alg, { privateKey: KeyObject; publicKey: KeyObject }> = {
  RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  PS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: generateKeyPairSync('ed25519'),
};
const weakRsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });

const claims = (overrides: Record<string, unknown> = {}) => ({
  iss: ISSUER,
  sub: 'user-1',
  aud: AUDIENCE,
  iat: NOW_S,
  nbf: NOW_S,
  exp: NOW_S + 900,
  jti: 'j1',
  client_id: 'app',
  scope: 'read',
  ...overrides,
});
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs exactly this header and payload, whatever jose would allow. */
function signRaw(alg: Alg, privateKey: KeyObject, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64({ alg, typ: 'at+jwt', kid: 'k', ...header })}.${b64(payload)}`;
  const digest = alg === 'EdDSA' ? null : 'sha256';
  const key =
    alg === 'PS256' ? { key: privateKey, padding: 6, saltLength: 32 } : alg === 'ES256' ? { key: privateKey, dsaEncoding: 'ieee-p1363' as const } : privateKey;
  return `${input}.${cryptoSign(digest, Buffer.from(input), key).toString('base64url')}`;
}

async function joseVerdict(token: string, alg: string, publicKey: KeyObject): Promise<boolean> {
  try {
    const key = await importJWK({ ...(await exportJWK(publicKey)), alg }, alg);
    await jwtVerify(token, key, {
      algorithms: [alg],
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: 'at+jwt',
      clockTolerance: TOLERANCE,
      currentDate: new Date(NOW),
      requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
    });
    return true;
  } catch {
    return false;
  }
}

async function coreVerdict(token: string, alg: string, publicKey: KeyObject): Promise<boolean> {
  try {
    const parsed = parseToken(token);
    checkAlgorithm(parsed.alg, new Set([alg]));
    const key = signatureKeyFromJwk(parsed.alg, { ...(await exportJWK(publicKey)) });
    if (key === undefined) return false;
    await verifySignature(parsed, key);
    checkClaims(parsed.payload, { issuer: ISSUER, audience: [AUDIENCE], clockTolerance: TOLERANCE }, NOW);
    return true;
  } catch {
    return false;
  }
}

describe('the core and jose jwtVerify agree', () => {
  for (const alg of Object.keys(pairs) as Alg[]) {
    const { privateKey, publicKey } = pairs[alg];
    const other =
      alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : alg === 'EdDSA'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const good = signRaw(alg, privateKey, {}, claims());
    const [header, payload, signature] = good.split('.') as [string, string, string];
    const cases: Record<string, [token: string, key: KeyObject, expected: boolean]> = {
      'a good token': [good, publicKey, true],
      'a good token signed by jose': ['', publicKey, true],
      'a tampered payload': [`${header}.${b64(claims({ sub: 'admin' }))}.${signature}`, publicKey, false],
      'a flipped signature bit': [
        `${header}.${payload}.${Buffer.from(Buffer.from(signature, 'base64url').map((byte, index) => (index === 5 ? byte ^ 1 : byte))).toString('base64url')}`,
        publicKey,
        false,
      ],
      'a truncated signature': [`${header}.${payload}.${signature.slice(0, -4)}`, publicKey, false],
      'no signature': [`${header}.${payload}.`, publicKey, false],
      "another key's signature": [signRaw(alg, other.privateKey, {}, claims()), publicKey, false],
      'a crit header': [signRaw(alg, privateKey, { crit: ['exp'] }, claims()), publicKey, false],
      'typ JWT': [signRaw(alg, privateKey, { typ: 'JWT' }, claims()), publicKey, false],
      'typ application/at+jwt': [signRaw(alg, privateKey, { typ: 'application/AT+JWT' }, claims()), publicKey, true],
      'expired beyond the tolerance': [signRaw(alg, privateKey, {}, claims({ exp: NOW_S - TOLERANCE })), publicKey, false],
      'expired within the tolerance': [signRaw(alg, privateKey, {}, claims({ exp: NOW_S - TOLERANCE + 1 })), publicKey, true],
      'nbf beyond the tolerance': [signRaw(alg, privateKey, {}, claims({ nbf: NOW_S + TOLERANCE + 1 })), publicKey, false],
      'another issuer': [signRaw(alg, privateKey, {}, claims({ iss: 'https://evil.example.test' })), publicKey, false],
      'another audience': [signRaw(alg, privateKey, {}, claims({ aud: ['https://other.example.test'] })), publicKey, false],
      'no exp': [signRaw(alg, privateKey, {}, claims({ exp: undefined })), publicKey, false],
      'a string exp': [signRaw(alg, privateKey, {}, claims({ exp: String(NOW_S + 900) })), publicKey, false],
    };
    it.each(Object.entries(cases))(`${alg}: %s`, async (_name, [given, key, expected]) => {
      const token = given || (await new SignJWT(claims()).setProtectedHeader({ alg, typ: 'at+jwt', kid: 'k' }).sign(privateKey));
      expect({ jose: await joseVerdict(token, alg, key), core: await coreVerdict(token, alg, key) }).toEqual({ jose: expected, core: expected });
    });
  }

  it('an alg the key does not fit: RS256 header on a PS256 signature, ES256 on a P-384 key, RS256 on a 1024-bit key', async () => {
    const { privateKey, publicKey } = pairs.PS256;
    const input = `${b64({ alg: 'RS256', typ: 'at+jwt', kid: 'k' })}.${b64(claims())}`;
    const pss = `${input}.${cryptoSign('sha256', Buffer.from(input), { key: privateKey, padding: 6, saltLength: 32 }).toString('base64url')}`;
    const p384Token = `${b64({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })}.${b64(claims())}`;
    const p384Signed = `${p384Token}.${cryptoSign('sha256', Buffer.from(p384Token), { key: p384.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    const weak = signRaw('RS256', weakRsa.privateKey, {}, claims());
    for (const [token, alg, key] of [
      [pss, 'RS256', publicKey],
      [p384Signed, 'ES256', p384.publicKey],
      [weak, 'RS256', weakRsa.publicKey],
    ] as const) {
      expect({ jose: await joseVerdict(token, alg, key), core: await coreVerdict(token, alg, key) }).toEqual({ jose: false, core: false });
    }
  });

  it('the one intended difference: an iat beyond the tolerance in the future', async () => {
    const { privateKey, publicKey } = pairs.RS256;
    const token = signRaw('RS256', privateKey, {}, claims({ iat: NOW_S + TOLERANCE + 1 }));
    expect({ jose: await joseVerdict(token, 'RS256', publicKey), core: await coreVerdict(token, 'RS256', publicKey) }).toEqual({ jose: true, core: false });
  });
});
