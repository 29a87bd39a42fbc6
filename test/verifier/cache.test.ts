/**
 * The verifier's cache of verified tokens: a token seen again skips the signature, but
 * never what can change between two calls (the clock, the published keys, the scopes the
 * route asks for, the authority's introspection answer).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, isTokenError, type FetchLike, type VerifierOptions } from '../../packages/verifier/src/index.js';
import { AUDIENCE, claims, NOW, NOW_S, rsaKey, sign, startFakeAuthority, type FakeAuthority, type TestKey } from './helpers.js';

let authority: FakeAuthority;
let key: TestKey;
let other: TestKey;

beforeAll(async () => {
  [key, other] = await Promise.all([rsaKey('k1'), rsaKey('k2')]);
  authority = await startFakeAuthority([key, other]);
});
afterAll(async () => {
  await authority?.stop();
});

/** A verifier on its own clocks: `at.now` (wall, ms) and `at.elapsed` (monotonic, ms), both movable. */
function verifierAt(options: Partial<VerifierOptions> = {}) {
  const at = { now: NOW, elapsed: 0 };
  const verifier = createVerifier({ issuer: authority.issuer, audience: AUDIENCE, now: () => at.now, elapsed: () => at.elapsed, cooldownMs: 0, ...options });
  return { verifier, at };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return isTokenError(err) ? err.code : `threw ${String(err)}`;
  }
}

describe('the cache of verified tokens', () => {
  it('hands back the remembered result for a token seen again, and a fresh one for another token', async () => {
    const { verifier } = verifierAt();
    const token = await sign(key, claims(authority.issuer));
    const first = await verifier.verify(token);
    expect(await verifier.verify(token)).toBe(first);
    expect(await verifier.verify(await sign(key, claims(authority.issuer)))).not.toBe(first);
  });

  it('with cacheMaxEntries 0 verifies every time', async () => {
    const { verifier } = verifierAt({ cacheMaxEntries: 0 });
    const token = await sign(key, claims(authority.issuer));
    expect(await verifier.verify(token)).not.toBe(await verifier.verify(token));
  });

  it('is bounded: the least recently used token is forgotten first', async () => {
    const { verifier } = verifierAt({ cacheMaxEntries: 2 });
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => sign(key, claims(authority.issuer))));
    const first = await verifier.verify(a!);
    await verifier.verify(b!);
    await verifier.verify(c!);
    expect(await verifier.verify(a!)).not.toBe(first);
  });

  it('checks exp against the clock on every hit', async () => {
    const { verifier, at } = verifierAt({ clockTolerance: 30 });
    const token = await sign(key, claims(authority.issuer, { exp: NOW_S + 60 }));
    await verifier.verify(token);
    at.now = NOW + 89_000;
    await expect(verifier.verify(token)).resolves.toBeDefined();
    at.now = NOW + 91_000;
    expect(await codeOf(verifier.verify(token))).toBe('expired_token');
  });

  it('checks nbf and iat against the clock on every hit (a clock set back)', async () => {
    const { verifier, at } = verifierAt({ clockTolerance: 30 });
    const token = await sign(key, claims(authority.issuer));
    await verifier.verify(token);
    at.now = NOW - 60_000;
    expect(await codeOf(verifier.verify(token))).toBe('invalid_token');
  });

  it('checks the scopes each call asks for on every hit', async () => {
    const { verifier } = verifierAt();
    const token = await sign(key, claims(authority.issuer, { scope: 'read' }));
    await verifier.verify(token, { scopes: ['read'] });
    expect(await codeOf(verifier.verify(token, { scopes: ['write'] }))).toBe('insufficient_scope');
  });

  it('stops trusting a remembered token the moment a refetched JWKS no longer holds its kid', async () => {
    const { verifier, at } = verifierAt();
    const token = await sign(other, claims(authority.issuer));
    await verifier.verify(token);
    authority.keys = [key.jwk];
    try {
      // Past the JWKS max-age (300 s): the next call refetches the set, which lacks k2.
      at.elapsed += 301_000;
      expect(await codeOf(verifier.verify(token))).toBe('invalid_token');
    } finally {
      authority.keys = [key.jwk, other.jwk];
    }
  });

  it('does not stretch a stale key set: a hit past max-age waits for the refetch like a miss', async () => {
    const { verifier, at } = verifierAt({ maxStaleMs: 0 });
    const token = await sign(key, claims(authority.issuer));
    await verifier.verify(token);
    authority.failing = true;
    try {
      at.elapsed += 301_000;
      expect(await codeOf(verifier.verify(token))).toBe('temporarily_unavailable');
    } finally {
      authority.failing = false;
    }
  });

  it('asks introspection on every hit, through its own cache only', async () => {
    let active = true;
    let asked = 0;
    const fetch: FetchLike = async (url, init) => {
      if (url.endsWith('/introspect')) {
        asked++;
        return new Response(JSON.stringify({ active }), { headers: { 'content-type': 'application/json' } });
      }
      return globalThis.fetch(url, init);
    };
    const { verifier, at } = verifierAt({
      fetch,
      introspect: { url: `${authority.issuer}/introspect`, clientId: 'rs', clientSecret: 'secret', cacheMs: 5000 },
    });
    const token = await sign(key, claims(authority.issuer));
    await verifier.verify(token);
    await verifier.verify(token);
    expect(asked).toBe(1);
    active = false;
    at.elapsed += 5001;
    expect(await codeOf(verifier.verify(token))).toBe('revoked_token');
    expect(asked).toBe(2);
  });

  it('hands out results no caller can change for the next', async () => {
    const { verifier } = verifierAt();
    const token = await sign(key, claims(authority.issuer));
    const result = await verifier.verify(token);
    expect(() => (result.scope as Set<string>).add('admin')).toThrow(TypeError);
    expect(() => (result.roles as string[]).push('root')).toThrow(TypeError);
    expect(() => (result.payload.roles as string[]).push('root')).toThrow(TypeError);
    expect(() => ((result as { sub: string }).sub = 'someone-else')).toThrow(TypeError);
    const again = await verifier.verify(token);
    expect([...again.scope]).toEqual(['read', 'write']);
    expect(again.roles).toEqual(['admin']);
  });

  it('never remembers a refusal: a token refused once is checked in full again', async () => {
    const { verifier, at } = verifierAt();
    const token = await sign(key, claims(authority.issuer, { nbf: NOW_S + 600 }));
    expect(await codeOf(verifier.verify(token))).toBe('invalid_token');
    at.now = NOW + 600_000;
    await expect(verifier.verify(token)).resolves.toBeDefined();
  });
});
