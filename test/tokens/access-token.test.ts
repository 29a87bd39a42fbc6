import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { loadKeyRing, rotateKeys, type KeyAlg, type KeyRing } from '../../src/keys/index.js';
import { cryptoRandom } from '../../src/random.js';
import { createAccessTokens, type AccessTokens } from '../../src/tokens/access-token.js';
import { removeTempDirs, tempKeysDir, TIMINGS } from '../keys/helpers.js';

const ISSUER = 'https://auth.example.test';
const TTL = 900;
const SKEW = 60;

async function ringWith(alg: KeyAlg, clock = manualClock()): Promise<KeyRing> {
  const dir = await tempKeysDir();
  await rotateKeys({ dir, clock, production: false, ...TIMINGS, alg });
  return loadKeyRing(dir, { production: false });
}

const jwksOf = (ring: KeyRing) => createLocalJWKSet(JSON.parse(ring.jwks.body.toString()) as JSONWebKeySet);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('access tokens', () => {
  const clock = manualClock();
  let ring: KeyRing;
  let tokens: AccessTokens;

  beforeAll(async () => {
    ring = await ringWith('RS256', clock);
    tokens = createAccessTokens({ keys: { current: () => ring }, clock, random: cryptoRandom, issuer: ISSUER, ttl: TTL, clockSkew: SKEW });
  });
  afterAll(removeTempDirs);

  const request = {
    sub: 'user-1',
    aud: 'https://api.example.test',
    client_id: 'demo-app',
    scope: 'read write',
    email: 'a@example.test',
    roles: ['admin'],
    sid: 'fam-1',
  };

  it('issues an RFC 9068 JWT that a resource server verifies against the JWKS', async () => {
    const issued = await tokens.issue(request);
    const header = decodeProtectedHeader(issued.token);
    expect(header).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: ring.active.kid });

    const { payload } = await jwtVerify(issued.token, jwksOf(ring), {
      issuer: ISSUER,
      audience: request.aud,
      typ: 'at+jwt',
      currentDate: new Date(clock.now()),
    });
    const now = Math.floor(clock.now() / 1000);
    expect(payload).toEqual({
      iss: ISSUER,
      sub: 'user-1',
      aud: 'https://api.example.test',
      iat: now,
      nbf: now,
      exp: now + TTL,
      jti: issued.jti,
      client_id: 'demo-app',
      scope: 'read write',
      email: 'a@example.test',
      roles: ['admin'],
      sid: 'fam-1',
    });
    expect(issued.expiresAt).toBe((now + TTL) * 1000);
    expect(issued.expiresIn).toBe(TTL);
    expect(issued.kid).toBe(ring.active.kid);
  });

  it('leaves out email, roles and sid when not given, and never repeats a jti', async () => {
    const a = await tokens.issue({ sub: 'svc', aud: ['x', 'y'], client_id: 'svc', scope: '' });
    const b = await tokens.issue({ sub: 'svc', aud: ['x', 'y'], client_id: 'svc', scope: '' });
    expect(Object.keys(a.claims).sort()).toEqual(['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'nbf', 'scope', 'sub']);
    expect(a.claims.aud).toEqual(['x', 'y']);
    expect(a.jti).not.toBe(b.jti);
  });

  it('verifies its own tokens, returning the claims', async () => {
    const issued = await tokens.issue(request);
    const result = await tokens.verify(issued.token);
    expect(result).toEqual({ ok: true, kid: ring.active.kid, claims: issued.claims });
    expect(await tokens.verify(issued.token, { audience: 'https://api.example.test' })).toMatchObject({ ok: true });
    expect(await tokens.verify(issued.token, { audience: 'https://other.example.test' })).toMatchObject({ ok: false, error: 'invalid' });
  });

  it('tolerates clock skew on exp, then reports expired', async () => {
    const issued = await tokens.issue(request);
    const start = clock.now();
    clock.advance((TTL + SKEW - 1) * 1000);
    expect(await tokens.verify(issued.token)).toMatchObject({ ok: true });
    clock.advance(2000);
    expect(await tokens.verify(issued.token)).toMatchObject({ ok: false, error: 'expired' });
    clock.set(start);
  });

  describe('refuses forged or altered tokens', () => {
    const claims = () => {
      const iat = Math.floor(clock.now() / 1000);
      return { iss: ISSUER, sub: 'attacker', aud: 'api', iat, nbf: iat, exp: iat + TTL, jti: 'j', client_id: 'demo-app', scope: 'admin' };
    };
    const signWithOurKey = (header: Record<string, unknown>, payload: Record<string, unknown>) =>
      new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: ring.active.kid, typ: 'at+jwt', ...header }).sign(ring.signingKey().privateKey);

    it('a well-formed token signed with our key passes (the control case)', async () => {
      expect(await tokens.verify(await signWithOurKey({}, claims()))).toMatchObject({ ok: true });
    });

    it('alg none', async () => {
      const token = `${b64({ alg: 'none', typ: 'at+jwt', kid: ring.active.kid })}.${b64(claims())}.`;
      expect(await tokens.verify(token)).toMatchObject({ ok: false, error: 'invalid' });
    });

    it('HS256 with the public key as the HMAC secret', async () => {
      const publicJwk = JSON.stringify(ring.active.publicJwk);
      // The public key in the forms an attacker can fetch or derive (the JWKS entry, PEM).
      const publicKey = createPublicKey(ring.signingKey().privateKey);
      const spkiPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const pkcs1Pem = publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
      for (const secret of [publicJwk, spkiPem, pkcs1Pem]) {
        const token = await new SignJWT(claims())
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: ring.active.kid })
          .sign(new TextEncoder().encode(secret));
        expect(await tokens.verify(token)).toMatchObject({ ok: false, error: 'invalid' });
      }
    });

    it('an unknown kid, and another key claiming our kid', async () => {
      expect(await tokens.verify(await signWithOurKey({ kid: 'no-such-kid' }, claims()))).toMatchObject({ ok: false, error: 'invalid' });
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const impostor = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: ring.active.kid }).sign(privateKey);
      expect(await tokens.verify(impostor)).toMatchObject({ ok: false, error: 'invalid' });
    });

    it('typ JWT or no typ', async () => {
      expect(await tokens.verify(await signWithOurKey({ typ: 'JWT' }, claims()))).toMatchObject({ ok: false, error: 'invalid' });
      const noTyp = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: ring.active.kid }).sign(ring.signingKey().privateKey);
      expect(await tokens.verify(noTyp)).toMatchObject({ ok: false, error: 'invalid' });
    });

    it('a tampered payload', async () => {
      const [header, , signature] = (await tokens.issue(request)).token.split('.');
      const forged = `${header}.${b64({ ...claims(), sub: 'someone-else' })}.${signature}`;
      expect(await tokens.verify(forged)).toMatchObject({ ok: false, error: 'invalid' });
    });

    it('an expired token whose payload was tampered with is invalid, not merely expired', async () => {
      const [header, , signature] = (await tokens.issue(request)).token.split('.');
      const old = { ...claims(), exp: Math.floor(clock.now() / 1000) - 3600 };
      expect(await tokens.verify(`${header}.${b64(old)}.${signature}`)).toMatchObject({ ok: false, error: 'invalid' });
    });

    it('a wrong issuer, a future nbf, a missing client_id', async () => {
      expect(await tokens.verify(await signWithOurKey({}, { ...claims(), iss: 'https://evil.example.test' }))).toMatchObject({ ok: false, error: 'invalid' });
      expect(await tokens.verify(await signWithOurKey({}, { ...claims(), nbf: Math.floor(clock.now() / 1000) + SKEW + 60 }))).toMatchObject({
        ok: false,
        error: 'invalid',
      });
      const { client_id: _omitted, ...withoutClient } = claims();
      expect(await tokens.verify(await signWithOurKey({}, withoutClient))).toMatchObject({ ok: false, error: 'invalid' });
    });

    it('an iat beyond the clock skew in the future, as the verifier kit refuses it (hardening issue 6)', async () => {
      const now = Math.floor(clock.now() / 1000);
      expect(await tokens.verify(await signWithOurKey({}, { ...claims(), iat: now + 3600, nbf: now }))).toMatchObject({ ok: false, error: 'invalid' });
      expect(await tokens.verify(await signWithOurKey({}, { ...claims(), iat: now + SKEW + 1 }))).toMatchObject({ ok: false, error: 'invalid' });
      expect(await tokens.verify(await signWithOurKey({}, { ...claims(), iat: now + SKEW }))).toMatchObject({ ok: true });
    });

    it('claims of the wrong type, as the verifier kit refuses them', async () => {
      for (const changes of [{ roles: 'admin' }, { email: 42 }, { sid: ['x'] }, { aud: ['api', 7] }, { jti: '' }, { sub: '' }]) {
        expect([changes, await tokens.verify(await signWithOurKey({}, { ...claims(), ...changes }))]).toMatchObject([changes, { ok: false, error: 'invalid' }]);
      }
    });

    it('a missing exp: a token signed with our key must still expire', async () => {
      const { exp: _omitted, ...withoutExp } = claims();
      expect(await tokens.verify(await signWithOurKey({}, withoutExp))).toMatchObject({ ok: false, error: 'invalid' });
    });

    it('a scope that is not a space-delimited string (RFC 9068 §2.2.3)', async () => {
      for (const scope of [['admin'], 42, { admin: true }, null]) {
        expect(await tokens.verify(await signWithOurKey({}, { ...claims(), scope }))).toMatchObject({ ok: false, error: 'invalid' });
      }
    });

    it('garbage, never throwing', async () => {
      for (const token of ['', 'a.b.c', 'not-a-jwt', `${b64({ alg: 'RS256' })}.e30.`, 'x'.repeat(20_000)]) {
        expect(await tokens.verify(token)).toMatchObject({ ok: false, error: 'invalid' });
      }
    });
  });
});

describe('during a key rotation', () => {
  afterAll(removeTempDirs);

  it("verifies a token signed with its ring's next key, which another instance has already promoted", async () => {
    const clock = manualClock();
    const dir = await tempKeysDir();
    await rotateKeys({ dir, clock, production: false, ...TIMINGS });
    const notReloaded = await loadKeyRing(dir, { production: false });
    const next = notReloaded.keys.find((key) => key.state === 'next')!;
    // Another instance promotes `next` and signs with it before this one reloads its ring.
    clock.advance((TIMINGS.jwksMaxAge + TIMINGS.keyPromotionMargin) * 1000);
    await rotateKeys({ dir, clock, production: false, ...TIMINGS });
    const promoted = await loadKeyRing(dir, { production: false });
    expect(promoted.active.kid).toBe(next.kid);
    const deps = { clock, random: cryptoRandom, issuer: ISSUER, ttl: TTL, clockSkew: SKEW };
    const issued = await createAccessTokens({ ...deps, keys: { current: () => promoted } }).issue({ sub: 'u', aud: 'api', client_id: 'c', scope: 's' });
    expect(issued.kid).toBe(next.kid);
    expect(await createAccessTokens({ ...deps, keys: { current: () => notReloaded } }).verify(issued.token)).toMatchObject({ ok: true, kid: next.kid });
  });
});

describe('other algorithms', () => {
  afterAll(removeTempDirs);

  for (const alg of ['ES256', 'EdDSA', 'PS256'] as const) {
    it(`${alg} tokens verify with jose against the JWKS and with verify()`, async () => {
      const clock = manualClock();
      const ring = await ringWith(alg, clock);
      const tokens = createAccessTokens({ keys: { current: () => ring }, clock, random: cryptoRandom, issuer: ISSUER, ttl: TTL, clockSkew: SKEW });
      const issued = await tokens.issue({ sub: 'u', aud: 'api', client_id: 'c', scope: 's' });
      expect(decodeProtectedHeader(issued.token)).toEqual({ alg, typ: 'at+jwt', kid: ring.active.kid });
      const { payload } = await jwtVerify(issued.token, jwksOf(ring), { issuer: ISSUER, typ: 'at+jwt', algorithms: [alg], currentDate: new Date(clock.now()) });
      expect(payload.sub).toBe('u');
      expect(await tokens.verify(issued.token)).toMatchObject({ ok: true, kid: ring.active.kid });
    });
  }
});
