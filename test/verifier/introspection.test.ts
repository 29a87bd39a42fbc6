/**
 * Introspection mode against the real authority: a revoked token is refused within the
 * cache time, answers are cached and shared, and an unreachable endpoint fails closed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, type FetchLike, type VerifierOptions } from '../../src/verifier/index.js';
import { freePort } from '../support/processes.js';
import { CLIENT_SECRET, startAuthority, type RunningAuthority } from './real-authority.js';

let authority: RunningAuthority;
beforeAll(async () => {
  authority = await startAuthority();
});
afterAll(() => authority?.stop());

function setUp(introspect: Partial<NonNullable<VerifierOptions['introspect']>> = {}) {
  let offset = 0;
  let wallStep = 0;
  let calls = 0;
  const counting: FetchLike = (url, init) => {
    if (url.endsWith('/oauth/introspect')) calls++;
    return fetch(url, init);
  };
  const verifier = createVerifier({
    issuer: authority.url,
    audience: authority.service.config.audience,
    fetch: counting,
    now: () => Date.now() + offset + wallStep,
    elapsed: () => performance.now() + offset,
    introspect: { url: `${authority.url}/oauth/introspect`, clientId: 'demo-service', clientSecret: CLIENT_SECRET, cacheMs: 5000, ...introspect },
  });
  return { verifier, calls: () => calls, advance: (ms: number) => (offset += ms), stepWallClock: (ms: number) => (wallStep += ms) };
}

describe('introspection mode', () => {
  it('refuses a token revoked before it was ever seen, at once', async () => {
    const { verifier } = setUp();
    const token = await authority.passwordToken();
    await authority.revoke(token);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'revoked_token', status: 401, wwwAuthenticate: 'Bearer error="invalid_token", error_description="the token has been revoked"' });
  });

  it('refuses a revoked token once the cached answer expires, and caches the refusal', async () => {
    const { verifier, calls, advance } = setUp();
    const token = await authority.passwordToken();
    await expect(verifier.verify(token)).resolves.toMatchObject({ email: 'demo@example.com' });
    expect(calls()).toBe(1);
    await authority.revoke(token);
    // Within cacheMs the earlier "active" stands: that is the documented price of the cache.
    advance(4000);
    await expect(verifier.verify(token)).resolves.toBeDefined();
    expect(calls()).toBe(1);
    advance(1001);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'revoked_token' });
    expect(calls()).toBe(2);
    advance(60_000);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'revoked_token' });
    expect(calls()).toBe(2);
  });

  it('sees the revocation after cacheMs even when the wall clock steps back meanwhile', async () => {
    const { verifier, calls, advance, stepWallClock } = setUp();
    const token = await authority.passwordToken();
    await verifier.verify(token);
    await authority.revoke(token);
    // Back by 20 s (within the clock tolerance, so the token's iat is still acceptable).
    stepWallClock(-20_000);
    advance(5001);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'revoked_token' });
    expect(calls()).toBe(2);
  });

  it('with cacheMs 0, sees a revocation on the very next request', async () => {
    const { verifier } = setUp({ cacheMs: 0 });
    const token = await authority.clientCredentialsToken();
    await verifier.verify(token);
    await authority.revoke(token);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'revoked_token' });
  });

  it('asks once for many concurrent requests with the same token', async () => {
    const { verifier, calls } = setUp();
    const token = await authority.clientCredentialsToken();
    await Promise.all(Array.from({ length: 20 }, () => verifier.verify(token)));
    expect(calls()).toBe(1);
  });

  it('does not introspect tokens that fail local verification', async () => {
    const { verifier, calls } = setUp();
    const token = await authority.clientCredentialsToken();
    await expect(verifier.verify(`${token.slice(0, -4)}AAAA`)).rejects.toMatchObject({ code: 'invalid_token' });
    expect(calls()).toBe(0);
  });

  it('fails closed (503 temporarily_unavailable) when the endpoint is unreachable', async () => {
    const { verifier } = setUp({ url: `http://127.0.0.1:${await freePort()}/oauth/introspect` });
    const token = await authority.clientCredentialsToken();
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'temporarily_unavailable', status: 503, wwwAuthenticate: undefined });
  });

  it('fails closed when the authority refuses our credentials', async () => {
    const { verifier } = setUp({ clientSecret: 'wrong-secret' });
    const token = await authority.clientCredentialsToken();
    const err = await verifier.verify(token).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'temporarily_unavailable', detail: expect.stringMatching(/answered 401/) });
  });

  it('needs a url, a client id and a secret', () => {
    const base = { issuer: authority.url, audience: 'api' };
    expect(() => createVerifier({ ...base, introspect: { url: 'not a url', clientId: 'a', clientSecret: 'b' } })).toThrow(TypeError);
    expect(() => createVerifier({ ...base, introspect: { url: `${authority.url}/oauth/introspect`, clientId: '', clientSecret: 'b' } })).toThrow(TypeError);
  });

  it('refuses a cacheMs that is negative, not a number, infinite or over 5 minutes, and a bad maxEntries', () => {
    const introspect = { url: `${authority.url}/oauth/introspect`, clientId: 'a', clientSecret: 'b' };
    const build = (extra: object) => () => createVerifier({ issuer: authority.url, audience: 'api', introspect: { ...introspect, ...extra } });
    for (const cacheMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, 300_001, '5000']) expect(build({ cacheMs }), `cacheMs ${String(cacheMs)}`).toThrow(TypeError);
    for (const maxEntries of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1.5]) expect(build({ maxEntries }), `maxEntries ${maxEntries}`).toThrow(TypeError);
    expect(build({ cacheMs: 300_000, maxEntries: 1 })).not.toThrow();
    expect(build({ cacheMs: 0 })).not.toThrow();
  });
});
