/**
 * The verifier from the attacker's side: every forged, replayed, confused or broken token
 * we could think of is refused with the right code, against a real JWKS over HTTP.
 */
import { createHmac, createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, TokenError, type TokenErrorCode, type Verifier } from '../../packages/verifier/src/index.js';
import { AUDIENCE, b64, claims, NOW, NOW_S, rsaKey, sign, signRaw, startFakeAuthority, type FakeAuthority, type TestKey } from './helpers.js';

let authority: FakeAuthority;
let real: TestKey;
let attacker: TestKey;
let clock: number;
let verifier: Verifier;

beforeAll(async () => {
  [real, attacker] = await Promise.all([rsaKey('real-key'), rsaKey('attacker-key')]);
  authority = await startFakeAuthority([real]);
  clock = NOW;
  verifier = createVerifier({ issuer: authority.issuer, audience: AUDIENCE, now: () => clock });
  // Warm the cache, so each case below is judged against a loaded key set.
  await verifier.verify(await sign(real, claims(authority.issuer)));
});
afterAll(() => authority.stop());

async function rejection(token: unknown, v: Verifier = verifier): Promise<TokenError> {
  const err = await v.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof TokenError)) throw new Error(`expected a TokenError, got ${err === undefined ? 'a verified token' : String(err)}`);
  return err;
}

async function expectCode(token: unknown, code: TokenErrorCode): Promise<TokenError> {
  const err = await rejection(token);
  expect(err.code).toBe(code);
  expect(err.status).toBe(401);
  return err;
}

/** HMAC-SHA256 JWS over `header.payload` with `secret`, built by hand: jose refuses to. */
function hs256(secret: string | Buffer, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('a genuine token', () => {
  it('verifies, with typed claims', async () => {
    const payload = claims(authority.issuer);
    const token = await verifier.verify(await sign(real, payload));
    expect(token).toMatchObject({
      sub: 'user-1',
      client_id: 'demo-app',
      jti: payload.jti,
      roles: ['admin'],
      email: 'demo@example.com',
      sid: 'family-1',
      aud: [AUDIENCE],
      exp: NOW_S + 900,
      kid: 'real-key',
    });
    expect([...token.scope]).toEqual(['read', 'write']);
    expect(token.payload.iss).toBe(authority.issuer);
  });

  it('accepts typ application/at+jwt (RFC 9068 §4) and aud as an array holding ours', async () => {
    const token = await sign(real, claims(authority.issuer, { aud: ['https://other.test', AUDIENCE] }), { typ: 'application/at+jwt' });
    await expect(verifier.verify(token)).resolves.toMatchObject({ aud: ['https://other.test', AUDIENCE] });
  });
});

describe('algorithm attacks', () => {
  it('refuses alg none, however it is spelled', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const token = `${b64({ alg, typ: 'at+jwt', kid: real.kid })}.${b64(claims(authority.issuer))}.`;
      await expectCode(token, 'invalid_token');
    }
  });

  it('refuses HS256 signed with the RSA public key as the HMAC secret (PEM, DER and JWK forms)', async () => {
    const pem = real.publicKey.export({ type: 'spki', format: 'pem' });
    const der = real.publicKey.export({ type: 'spki', format: 'der' });
    const pkcs1 = createPublicKey(pem).export({ type: 'pkcs1', format: 'pem' });
    for (const secret of [pem, der, pkcs1, JSON.stringify(real.jwk)]) {
      const token = hs256(secret, { alg: 'HS256', typ: 'at+jwt', kid: real.kid }, claims(authority.issuer));
      const err = await expectCode(token, 'invalid_token');
      expect(err.description).toMatch(/algorithm/);
    }
  });

  it('refuses an RS256 key used for PS256 (the JWK says RS256)', async () => {
    const token = await sign(real, claims(authority.issuer), { alg: 'PS256' });
    await expectCode(token, 'invalid_token');
  });

  it('refuses PS256 with a key the JWKS publishes for RS256, even when PS256 is allowed (RFC 7517 §4.4)', async () => {
    const local = await startFakeAuthority([real]);
    try {
      // The same RSA modulus checks PS256 signatures too: only the JWK's own alg stops it.
      const unbound = await rsaKey('no-alg-key');
      local.keys = [real.jwk, { ...unbound.jwk, alg: undefined }];
      local.metadataAlgs = ['RS256', 'PS256'];
      const configured = createVerifier({ issuer: local.issuer, audience: AUDIENCE, jwksUri: local.jwksUri, algorithms: ['RS256', 'PS256'], now: () => NOW });
      const discovered = createVerifier({ issuer: local.issuer, audience: AUDIENCE, now: () => NOW });
      for (const v of [configured, discovered]) {
        const err = await rejection(await sign(real, claims(local.issuer), { alg: 'PS256' }), v);
        expect(err.code).toBe('invalid_token');
        expect(err.description).toMatch(/unknown key/);
        // The control: PS256 is allowed, and verifies with a key published without an alg.
        await expect(v.verify(await sign(unbound, claims(local.issuer), { alg: 'PS256' }))).resolves.toMatchObject({ kid: 'no-alg-key' });
      }
    } finally {
      await local.stop();
    }
  });

  it('refuses an alg the metadata does not list, even an asymmetric one', async () => {
    const token = await sign(real, claims(authority.issuer), { alg: 'RS512' });
    await expectCode(token, 'invalid_token');
  });
});

describe('key attacks', () => {
  it('refuses a valid signature from a key outside the JWKS under a real kid', async () => {
    const token = await sign({ kid: real.kid, privateKey: attacker.privateKey }, claims(authority.issuer));
    const err = await expectCode(token, 'invalid_token');
    expect(err.description).toMatch(/signature/);
  });

  it('refuses a valid signature from a key outside the JWKS under a fresh kid', async () => {
    const token = await sign(attacker, claims(authority.issuer));
    const err = await expectCode(token, 'invalid_token');
    expect(err.description).toMatch(/unknown key/);
  });

  it('ignores a key embedded in the header (jwk, jku, x5u)', async () => {
    const token = await sign({ kid: real.kid, privateKey: attacker.privateKey }, claims(authority.issuer), {
      jwk: { ...attacker.jwk, kid: undefined },
      jku: 'https://attacker.test/jwks',
      x5u: 'https://attacker.test/cert',
    });
    await expectCode(token, 'invalid_token');
  });

  it('refuses a token without kid', async () => {
    await expectCode(await sign(real, claims(authority.issuer), { kid: undefined }), 'invalid_token');
  });

  it('refuses an unknown critical header parameter (RFC 7515 §4.1.11)', async () => {
    const token = signRaw(real.privateKey, { alg: 'RS256', typ: 'at+jwt', kid: real.kid, crit: ['x-unknown'], 'x-unknown': 1 }, claims(authority.issuer));
    await expectCode(token, 'invalid_token');
    // The same bytes without `crit` verify: the refusal is about the header, not the signature.
    await expect(verifier.verify(signRaw(real.privateKey, { alg: 'RS256', typ: 'at+jwt', kid: real.kid }, claims(authority.issuer)))).resolves.toBeDefined();
  });
});

describe('a flood of unknown kids', () => {
  it('costs at most one JWKS request per cooldown, however many tokens arrive', async () => {
    const keyA = await rsaKey('flood-key');
    const local = await startFakeAuthority([keyA]);
    try {
      let now = NOW;
      const v = createVerifier({ issuer: local.issuer, audience: AUDIENCE, now: () => now, elapsed: () => now, cooldownMs: 30_000 });
      await v.verify(await sign(keyA, claims(local.issuer)));
      expect(local.hits.jwks).toBe(1);

      const junk = await Promise.all(Array.from({ length: 100 }, (_, i) => sign({ kid: `junk-${i}`, privateKey: attacker.privateKey }, claims(local.issuer))));
      const flood = async () => {
        const results = await Promise.allSettled(junk.map((token) => v.verify(token)));
        for (const result of results) {
          expect(result.status).toBe('rejected');
          expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'invalid_token' });
        }
      };

      // Within the cooldown of the first fetch: no request at all.
      await flood();
      expect(local.hits.jwks).toBe(1);
      // Past it, 100 concurrent unknown kids share one refetch...
      now += 30_001;
      await flood();
      expect(local.hits.jwks).toBe(2);
      // ...and the next 100, and 100 more one by one, share none.
      now += 29_000;
      await flood();
      for (const token of junk) await rejection(token, v);
      expect(local.hits.jwks).toBe(2);
      now += 1_001;
      for (const token of junk) await rejection(token, v);
      expect(local.hits.jwks).toBe(3);
      // Junk algs and typs are refused before any key lookup: still no request.
      now += 60_000;
      for (let i = 0; i < 20; i++) {
        await rejection(hs256('x', { alg: 'HS256', typ: 'at+jwt', kid: `hs-${i}` }, claims(local.issuer)), v);
        await rejection(await sign({ kid: `typ-${i}`, privateKey: attacker.privateKey }, claims(local.issuer), { typ: 'JWT' }), v);
      }
      expect(local.hits.jwks).toBe(3);
    } finally {
      await local.stop();
    }
  });
});

describe('token type confusion', () => {
  it('refuses typ JWT (an ID token or any other JWT from the same keys)', async () => {
    const err = await expectCode(await sign(real, claims(authority.issuer), { typ: 'JWT' }), 'invalid_token');
    expect(err.description).toMatch(/at\+jwt/);
  });

  it('refuses a token without typ', async () => {
    await expectCode(await sign(real, claims(authority.issuer), { typ: undefined }), 'invalid_token');
  });
});

describe('claims', () => {
  it('refuses another issuer', async () => {
    const err = await expectCode(await sign(real, claims('https://evil.test')), 'invalid_token');
    expect(err.description).toMatch(/another authority/);
  });

  it('refuses an issuer that only differs by a trailing slash', async () => {
    await expectCode(await sign(real, claims(`${authority.issuer}/`)), 'invalid_token');
  });

  it('refuses a token for another audience', async () => {
    const err = await expectCode(await sign(real, claims(authority.issuer, { aud: 'https://other-api.test' })), 'invalid_token');
    expect(err.description).toMatch(/not meant for this API/);
  });

  it('refuses an aud array holding anything but strings, even next to ours', async () => {
    for (const aud of [
      [AUDIENCE, 5],
      [AUDIENCE, null],
      [AUDIENCE, ['x']],
      [AUDIENCE, { a: 1 }],
    ]) {
      await expectCode(await sign(real, claims(authority.issuer, { aud })), 'invalid_token');
    }
  });

  it('refuses an audience that only contains ours as a prefix', async () => {
    await expectCode(await sign(real, claims(authority.issuer, { aud: `${AUDIENCE}.evil.test` })), 'invalid_token');
  });

  it('refuses an expired token with expired_token, beyond the 30 s tolerance only', async () => {
    const token = await sign(real, claims(authority.issuer, { exp: NOW_S - 20 }));
    await expect(verifier.verify(token)).resolves.toBeDefined();
    const err = await expectCode(await sign(real, claims(authority.issuer, { exp: NOW_S - 31 })), 'expired_token');
    expect(err.wwwAuthenticate).toMatch(/^Bearer error="invalid_token", error_description="the token has expired"$/);
  });

  it('refuses a token whose nbf is ahead, beyond the tolerance only', async () => {
    await expect(verifier.verify(await sign(real, claims(authority.issuer, { nbf: NOW_S + 20 })))).resolves.toBeDefined();
    const err = await expectCode(await sign(real, claims(authority.issuer, { nbf: NOW_S + 120 })), 'invalid_token');
    expect(err.description).toMatch(/not valid yet/);
  });

  it('refuses a token issued in the future', async () => {
    await expectCode(await sign(real, claims(authority.issuer, { iat: NOW_S + 600, nbf: undefined })), 'invalid_token');
  });

  it('refuses an iat ahead by more than the 30 s tolerance, and only then', async () => {
    await expect(verifier.verify(await sign(real, claims(authority.issuer, { iat: NOW_S + 29, nbf: undefined })))).resolves.toBeDefined();
    const err = await expectCode(await sign(real, claims(authority.issuer, { iat: NOW_S + 31, nbf: undefined })), 'invalid_token');
    expect(err.description).toMatch(/issued in the future/);
  });

  it.each(['sub', 'client_id', 'jti', 'exp', 'iat'])('refuses a token without %s', async (claim) => {
    const err = await expectCode(await sign(real, claims(authority.issuer, { [claim]: undefined })), 'invalid_token');
    expect(err.description).toContain(claim);
  });

  it('refuses claims of the wrong type', async () => {
    for (const bad of [{ scope: ['read'] }, { roles: 'admin' }, { sub: 42 }, { sub: '' }, { client_id: '' }, { email: true }]) {
      await expectCode(await sign(real, claims(authority.issuer, bad)), 'invalid_token');
    }
  });
});

describe('scopes', () => {
  it('adds the scopes of a call to requiredScopes, never replaces them', async () => {
    const adminOnly = createVerifier({ issuer: authority.issuer, audience: AUDIENCE, requiredScopes: ['admin'], now: () => clock });
    const token = await sign(real, claims(authority.issuer, { scope: 'read' }));
    const err = await rejection(token, adminOnly);
    expect(err).toMatchObject({ code: 'insufficient_scope', status: 403 });
    const withCallScopes = await adminOnly.verify(token, { scopes: ['read'] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(withCallScopes).toBeInstanceOf(TokenError);
    expect(withCallScopes).toMatchObject({ code: 'insufficient_scope', status: 403, description: 'the token lacks the scope admin', scope: ['admin', 'read'] });
    // The control: the same call passes for a token with both.
    await expect(adminOnly.verify(await sign(real, claims(authority.issuer, { scope: 'read admin' })), { scopes: ['read'] })).resolves.toBeDefined();
  });
});

describe('broken tokens', () => {
  it('refuses a payload tampered with after signing', async () => {
    const [header, , signature] = (await sign(real, claims(authority.issuer, { roles: [] }))).split('.');
    const forged = `${header}.${b64(claims(authority.issuer, { roles: ['admin'] }))}.${signature}`;
    const err = await expectCode(forged, 'invalid_token');
    expect(err.description).toMatch(/signature/);
  });

  it('refuses a header tampered with after signing', async () => {
    const [, payload, signature] = (await sign(real, claims(authority.issuer))).split('.');
    await expectCode(`${b64({ alg: 'RS256', typ: 'at+jwt', kid: real.kid, extra: 1 })}.${payload}.${signature}`, 'invalid_token');
  });

  it('refuses truncated tokens as malformed', async () => {
    const token = await sign(real, claims(authority.issuer));
    const [header, payload, signature] = token.split('.');
    await expectCode(`${header}.${payload}`, 'malformed_token');
    await expectCode(`${header}`, 'malformed_token');
    await expectCode(token.slice(0, token.indexOf('.') + 10), 'malformed_token');
    // Three segments, but the signature cut short: well-formed, and wrong.
    await expectCode(`${header}.${payload}.${signature!.slice(0, 20)}`, 'invalid_token');
    await expectCode(`${header}.${payload}.`, 'invalid_token');
  });

  it('refuses extra segments (and JWE) as malformed', async () => {
    const token = await sign(real, claims(authority.issuer));
    await expectCode(`${token}.AAAA`, 'malformed_token');
    await expectCode(`${token}..`, 'malformed_token');
    const err = await expectCode(`${token}.AAAA.BBBB`, 'malformed_token');
    expect(err.description).toMatch(/JWE/);
  });

  it('refuses non-base64url and non-JSON segments as malformed', async () => {
    const token = await sign(real, claims(authority.issuer));
    const [header, payload, signature] = token.split('.');
    await expectCode(`${header}.${payload}!.${signature}`, 'malformed_token');
    await expectCode(`${b64('not json')}.${payload}.${signature}`, 'malformed_token');
    await expectCode(`${header}.${b64('[1,2]')}.${signature}`, 'malformed_token');
    await expectCode(`${b64('"a string"')}.${payload}.${signature}`, 'malformed_token');
    await expectCode(` ${token}`, 'malformed_token');
  });

  it('refuses empty strings, non-strings and oversized input as malformed', async () => {
    for (const value of ['', undefined, null, 42, {}, ['a.b.c'], Buffer.from('a.b.c')]) await expectCode(value, 'malformed_token');
    await expectCode(`${'a'.repeat(20_000)}.${'b'.repeat(20)}.${'c'.repeat(20)}`, 'malformed_token');
  });
});

describe('construction', () => {
  it('refuses HMAC and none in algorithms, and anything unknown', () => {
    for (const algorithms of [['HS256'], ['RS256', 'HS512'], ['hs384'], ['none'], ['RS256', 'None'], ['RSA1_5'], []]) {
      expect(() => createVerifier({ issuer: 'https://as.test', audience: 'api', algorithms })).toThrow(TypeError);
    }
    expect(() => createVerifier({ issuer: 'https://as.test', audience: 'api', algorithms: ['HS256'] })).toThrow(/HMAC/);
  });

  it('needs an issuer and an audience', () => {
    expect(() => createVerifier({ issuer: '', audience: 'api' })).toThrow(/issuer/);
    expect(() => createVerifier({ issuer: 'https://as.test', audience: '' })).toThrow(/audience/);
    expect(() => createVerifier({ issuer: 'https://as.test', audience: [] })).toThrow(/audience/);
    expect(() => createVerifier({ issuer: 'not a url', audience: 'api' })).toThrow(/URL/);
  });

  it('drops HMAC algs listed in the metadata, and refuses to work with a metadata listing only those', async () => {
    const local = await startFakeAuthority([real]);
    try {
      local.metadataAlgs = ['HS256', 'RS256'];
      const v = createVerifier({ issuer: local.issuer, audience: AUDIENCE, now: () => NOW });
      await expect(v.verify(await sign(real, claims(local.issuer)))).resolves.toBeDefined();
      expect(
        (
          await rejection(
            hs256(real.publicKey.export({ type: 'spki', format: 'pem' }), { alg: 'HS256', typ: 'at+jwt', kid: real.kid }, claims(local.issuer)),
            v,
          )
        ).code,
      ).toBe('invalid_token');

      local.metadataAlgs = ['HS256'];
      const hmacOnly = createVerifier({ issuer: local.issuer, audience: AUDIENCE, now: () => NOW });
      const err = await rejection(await sign(real, claims(local.issuer)), hmacOnly);
      expect(err).toMatchObject({ code: 'temporarily_unavailable', status: 503, wwwAuthenticate: undefined });
      expect(err.detail).toMatch(/no asymmetric signing algorithm/);
    } finally {
      await local.stop();
    }
  });

  it('refuses metadata that names another issuer (RFC 8414 §3.3)', async () => {
    const local = await startFakeAuthority([real]);
    try {
      local.metadataIssuer = 'https://evil.test';
      const v = createVerifier({ issuer: local.issuer, audience: AUDIENCE, now: () => NOW });
      const err = await rejection(await sign(real, claims(local.issuer)), v);
      expect(err.code).toBe('temporarily_unavailable');
      expect(local.hits.jwks).toBe(0);
    } finally {
      await local.stop();
    }
  });
});
