/**
 * How the verifier treats the authority: discovery, caching for the JWKS's max-age, ETag
 * revalidation, riding out a failed refetch, failing closed when it has nothing, and one
 * request for many concurrent callers. Requests are counted at a real local server.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, metadataUrl, TokenError, type FetchLike, type Verifier } from '../../packages/verifier/src/index.js';
import { AUDIENCE, claims, NOW, rsaKey, sign, startFakeAuthority, type FakeAuthority, type TestKey } from './helpers.js';

let keyA: TestKey;
let keyB: TestKey;
let authority: FakeAuthority;
let now: number;

beforeAll(async () => {
  [keyA, keyB] = await Promise.all([rsaKey('key-a'), rsaKey('key-b')]);
});
afterEach(() => authority?.stop());

async function setUp(keys: TestKey[] = [keyA], options: Partial<Parameters<typeof createVerifier>[0]> = {}): Promise<Verifier> {
  authority = await startFakeAuthority(keys);
  now = NOW;
  // One clock for both here: moving `now` ages the cache too (see the step-back tests for the difference).
  return createVerifier({ issuer: authority.issuer, audience: AUDIENCE, now: () => now, elapsed: () => now, ...options });
}

const tokenFor = (key: TestKey, overrides: Record<string, unknown> = {}) => sign(key, claims(authority.issuer, { exp: NOW / 1000 + 3600, ...overrides }));

describe('discovery', () => {
  it('finds jwks_uri and the algorithms in the RFC 8414 metadata', async () => {
    const verifier = await setUp();
    await verifier.verify(await tokenFor(keyA));
    expect(authority.hits).toMatchObject({ metadata: 1, jwks: 1 });
  });

  it('asks nothing of the metadata when jwksUri and algorithms are given', async () => {
    authority = await startFakeAuthority([keyA]);
    const verifier = createVerifier({ issuer: authority.issuer, audience: AUDIENCE, jwksUri: authority.jwksUri, algorithms: ['RS256'], now: () => NOW });
    await verifier.verify(await tokenFor(keyA));
    expect(authority.hits).toMatchObject({ metadata: 0, jwks: 1 });
  });

  it('puts the well-known segment before the issuer path (RFC 8414 §3.1)', () => {
    expect(metadataUrl('https://as.test')).toBe('https://as.test/.well-known/oauth-authorization-server');
    expect(metadataUrl('https://as.test/')).toBe('https://as.test/.well-known/oauth-authorization-server');
    expect(metadataUrl('https://as.test/tenant/one')).toBe('https://as.test/.well-known/oauth-authorization-server/tenant/one');
  });
});

describe('JWKS caching', () => {
  it('honours Cache-Control max-age, then revalidates with the ETag', async () => {
    const verifier = await setUp();
    authority.cacheControl = 'public, max-age=60';
    const token = await tokenFor(keyA);
    await verifier.verify(token);
    now += 59_000;
    await verifier.verify(token);
    expect(authority.hits.jwks).toBe(1);
    now += 2_000;
    await verifier.verify(token);
    expect(authority.hits.jwks).toBe(2);
    expect(authority.hits.notModified).toBeGreaterThanOrEqual(1);
    // The 304 made the set fresh for another max-age.
    now += 59_000;
    await verifier.verify(token);
    expect(authority.hits.jwks).toBe(2);
  });

  it('defaults to 5 minutes without a max-age', async () => {
    const verifier = await setUp();
    authority.cacheControl = undefined;
    const token = await tokenFor(keyA);
    await verifier.verify(token);
    now += 299_000;
    await verifier.verify(token);
    expect(authority.hits.jwks).toBe(1);
    now += 2_000;
    await verifier.verify(token);
    expect(authority.hits.jwks).toBe(2);
  });

  it('never refetches more than once per cooldown, even with max-age=0', async () => {
    const verifier = await setUp([keyA], { cooldownMs: 10_000 });
    authority.cacheControl = 'no-cache';
    const token = await tokenFor(keyA);
    for (let i = 0; i < 20; i++) await verifier.verify(token);
    expect(authority.hits.jwks).toBe(1);
    now += 10_000;
    for (let i = 0; i < 20; i++) await verifier.verify(token);
    expect(authority.hits.jwks).toBe(2);
  });

  it('keeps using the cached set when a refetch fails, and retries after the cooldown', async () => {
    const verifier = await setUp();
    const token = await tokenFor(keyA);
    await verifier.verify(token);
    authority.failing = true;
    now += 301_000;
    await expect(verifier.verify(token)).resolves.toMatchObject({ kid: 'key-a' });
    const attempts = authority.hits.metadata + authority.hits.jwks;
    await verifier.verify(token);
    expect(authority.hits.metadata + authority.hits.jwks).toBe(attempts);

    authority.failing = false;
    now += 30_000;
    await verifier.verify(token);
    expect(authority.hits.jwks).toBe(2);
  });

  it('stops using a stale set maxStaleMs (15 min) past its max-age while refetches keep failing', async () => {
    const errors: Error[] = [];
    const verifier = await setUp([keyA], { onError: (err) => errors.push(err) });
    const token = await tokenFor(keyA);
    await verifier.verify(token);
    authority.failing = true;
    // max-age 300 s, then 900 s of stale use: a key removed meanwhile cannot outlive that.
    now += 300_000 + 899_000;
    await expect(verifier.verify(token)).resolves.toMatchObject({ kid: 'key-a' });
    now += 1_000;
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'temporarily_unavailable', status: 503 });
    authority.failing = false;
    now += 30_000;
    await expect(verifier.verify(token)).resolves.toMatchObject({ kid: 'key-a' });
    expect(errors.length).toBeGreaterThan(0);
  });

  it('counts the Age a shared cache reports against max-age', async () => {
    const verifier = await setUp();
    authority.cacheControl = 'public, max-age=60';
    authority.age = '50';
    const token = await tokenFor(keyA);
    await verifier.verify(token);
    now += 30_000; // cooldown; fresh for only 10 s after the fetch
    await verifier.verify(token);
    expect(authority.hits.jwks).toBe(2);
  });

  it('gives up on a chunked JWKS body once it passes 1 MiB, without reading it all', async () => {
    const errors: Error[] = [];
    const verifier = await setUp([keyA], { onError: (err) => errors.push(err) });
    authority.chunkedBytes = 256 * 1024 * 1024;
    await expect(verifier.verify(await tokenFor(keyA))).rejects.toMatchObject({ code: 'temporarily_unavailable' });
    expect(errors[0]?.message).toMatch(/body over 1048576 bytes/);
    // It stopped reading: what the server managed to write is the limit plus socket buffers.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(authority.chunkedSent).toBeLessThan(32 * 1024 * 1024);
  });

  it('fails closed with temporarily_unavailable (503) while it has never had a key set', async () => {
    const errors: Error[] = [];
    const verifier = await setUp([keyA], { onError: (err) => errors.push(err) });
    authority.failing = true;
    const token = await tokenFor(keyA);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'temporarily_unavailable', status: 503, wwwAuthenticate: undefined });
    expect(errors[0]?.message).toMatch(/answered 500/);
    // Within the cooldown, no new attempt: a down authority is not hammered either.
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'temporarily_unavailable' });
    expect(authority.hits.metadata + authority.hits.jwks).toBe(0);

    authority.failing = false;
    now += 30_000;
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: 'user-1' });
  });

  it('fails closed when the authority does not answer in time', async () => {
    const hanging: FetchLike = (_url, init) => new Promise((_resolve, reject) => init.signal?.addEventListener('abort', () => reject(init.signal?.reason)));
    const verifier = await setUp([keyA], { fetch: hanging, timeoutMs: 50 });
    await expect(verifier.verify(await tokenFor(keyA))).rejects.toMatchObject({ code: 'temporarily_unavailable' });
  });

  it('serves many concurrent first callers with one metadata and one JWKS request', async () => {
    const verifier = await setUp();
    const tokens = await Promise.all(Array.from({ length: 50 }, () => tokenFor(keyA)));
    const results = await Promise.all(tokens.map((token) => verifier.verify(token)));
    expect(new Set(results.map((r) => r.jti)).size).toBe(50);
    expect(authority.hits).toMatchObject({ metadata: 1, jwks: 1 });
  });

  it('picks up a key published after the first fetch on its first token (past the cooldown)', async () => {
    const verifier = await setUp([keyA]);
    await verifier.verify(await tokenFor(keyA));
    authority.keys = [keyA.jwk, keyB.jwk];
    now += 30_000;
    await expect(verifier.verify(await tokenFor(keyB))).resolves.toMatchObject({ kid: 'key-b' });
    expect(authority.hits.jwks).toBe(2);
  });

  it('stops accepting a key once a refetched set no longer holds it', async () => {
    const verifier = await setUp([keyA, keyB]);
    authority.cacheControl = 'max-age=60';
    const token = await tokenFor(keyB);
    await verifier.verify(token);
    authority.keys = [keyA.jwk];
    now += 61_000;
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('ignores symmetric keys and keys not meant for signatures in the JWKS', async () => {
    const verifier = await setUp([keyA]);
    authority.keys = [
      { kty: 'oct', kid: 'key-a', k: 'c2VjcmV0', alg: 'HS256' },
      { ...keyA.jwk, use: 'enc' },
      { ...keyA.jwk, key_ops: ['encrypt'] },
    ];
    await expect(verifier.verify(await tokenFor(keyA))).rejects.toMatchObject({ code: 'invalid_token' });
  });

  it('imports only the public members of a JWK', async () => {
    const verifier = await setUp([keyA]);
    const priv = keyA.privateKey.export({ format: 'jwk' });
    authority.keys = [{ ...priv, kid: 'key-a', alg: 'RS256', use: 'sig' }];
    await expect(verifier.verify(await tokenFor(keyA))).resolves.toMatchObject({ kid: 'key-a' });
  });
});

describe('configured algorithms', () => {
  it('refuse other algs before any request to the authority', async () => {
    authority = await startFakeAuthority([keyA]);
    const verifier = createVerifier({ issuer: authority.issuer, audience: AUDIENCE, jwksUri: authority.jwksUri, algorithms: ['ES256'], now: () => NOW });
    await expect(verifier.verify(await tokenFor(keyA))).rejects.toMatchObject({
      code: 'invalid_token',
      description: "the token's signing algorithm is not accepted",
    });
    expect(authority.hits).toMatchObject({ metadata: 0, jwks: 0 });
  });
});

describe('an onError that throws', () => {
  const onError = () => {
    throw new Error('the logger broke');
  };
  let failing: (url: string) => boolean = () => false;
  const flaky: FetchLike = (url, init) => (failing(url) ? Promise.reject(new Error(`cannot reach ${url}`)) : fetch(url, init));

  it('is ignored when no key set can be loaded: still TokenError temporarily_unavailable', async () => {
    const verifier = await setUp([keyA], { onError });
    authority.failing = true;
    const err: unknown = await verifier.verify(await tokenFor(keyA)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenError);
    expect(err).toMatchObject({ code: 'temporarily_unavailable' });
  });

  it('is ignored when a metadata refetch fails: the JWKS refetch still goes ahead', async () => {
    failing = () => false;
    const verifier = await setUp([keyA], { onError, fetch: flaky });
    const token = await tokenFor(keyA);
    await verifier.verify(token);
    failing = (url) => url.includes('/.well-known/');
    now += 301_000;
    await expect(verifier.verify(token)).resolves.toMatchObject({ kid: 'key-a' });
    expect(authority.hits.jwks).toBe(2);
  });

  it('is ignored when introspection fails: still TokenError temporarily_unavailable', async () => {
    const introspect = { url: 'http://127.0.0.1:1/introspect', clientId: 'rs', clientSecret: 'secret' };
    failing = (url) => url === introspect.url;
    const verifier = await setUp([keyA], { onError, fetch: flaky, introspect });
    const err: unknown = await verifier.verify(await tokenFor(keyA)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenError);
    expect(err).toMatchObject({ code: 'temporarily_unavailable' });
  });
});

describe('a wall clock that steps back', () => {
  // Valid whichever way the wall clock is set within the test.
  const long = { iat: NOW / 1000 - 7200, nbf: undefined, exp: NOW / 1000 + 7200 };

  it('does not keep a stale key set: a removed key is refused once max-age has really passed', async () => {
    let elapsed = 0;
    const verifier = await setUp([keyA, keyB], { elapsed: () => elapsed });
    authority.cacheControl = 'max-age=60';
    const token = await tokenFor(keyB, long);
    await verifier.verify(token);
    authority.keys = [keyA.jwk];
    now -= 3_600_000;
    elapsed += 61_000;
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'invalid_token' });
    expect(authority.hits.jwks).toBe(2);
  });

  it('does not stretch the refetch cooldown for an unknown kid', async () => {
    let elapsed = 0;
    const verifier = await setUp([keyA], { elapsed: () => elapsed });
    await verifier.verify(await tokenFor(keyA, long));
    authority.keys = [keyA.jwk, keyB.jwk];
    now -= 3_600_000;
    elapsed += 30_000;
    await expect(verifier.verify(await tokenFor(keyB, long))).resolves.toMatchObject({ kid: 'key-b' });
    expect(authority.hits.jwks).toBe(2);
  });
});
