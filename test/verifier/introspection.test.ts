/**
 * Introspection mode against the real authority: a revoked token is refused within the
 * cache time, answers are cached and shared, and an unreachable endpoint fails closed.
 * Against a local stand-in endpoint: after a failure the verifier backs off instead of
 * asking again on every request.
 */
import { createServer, type ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, TokenError, type FetchLike, type Verifier, type VerifierOptions } from '../../packages/verifier/src/index.js';
import { freePort } from '../support/processes.js';
import { AUDIENCE, claims, NOW, rsaKey, sign, startFakeAuthority, type FakeAuthority, type TestKey } from './helpers.js';
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
    await expect(verifier.verify(token)).rejects.toMatchObject({
      code: 'revoked_token',
      status: 401,
      wwwAuthenticate: 'Bearer error="invalid_token", error_description="the token has been revoked"',
    });
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
    for (const cacheMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, 300_001, '5000'])
      expect(build({ cacheMs }), `cacheMs ${String(cacheMs)}`).toThrow(TypeError);
    for (const maxEntries of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1.5]) expect(build({ maxEntries }), `maxEntries ${maxEntries}`).toThrow(TypeError);
    expect(build({ cacheMs: 300_000, maxEntries: 1 })).not.toThrow();
    expect(build({ cacheMs: 0 })).not.toThrow();
  });
});

describe('introspection backoff after a failure', () => {
  let keys: FakeAuthority;
  let key: TestKey;
  const servers: { stop(): Promise<void> }[] = [];
  beforeAll(async () => {
    key = await rsaKey('backoff-key');
    keys = await startFakeAuthority([key]);
  });
  afterAll(() => keys?.stop());
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  /** An introspection endpoint whose answer the test sets: a status with `active`, or 'hang' (never answers). */
  async function endpoint() {
    const held: ServerResponse[] = [];
    const state = { hits: 0, answer: 500 as 200 | 500 | 'hang', active: true as unknown, held };
    const server = createServer((req, res) => {
      state.hits++;
      req.resume();
      if (state.answer === 'hang') held.push(res);
      else if (state.answer === 500) res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ active: state.active }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    servers.push({
      stop: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    });
    return Object.assign(state, { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/introspect` });
  }

  function verifierFor(url: string, extra: Partial<VerifierOptions> = {}): { verifier: Verifier; advance(ms: number): void } {
    let clock = 0;
    const verifier = createVerifier({
      issuer: keys.issuer,
      audience: AUDIENCE,
      now: () => NOW,
      elapsed: () => clock,
      introspect: { url, clientId: 'rs', clientSecret: 'secret', cacheMs: 60_000 },
      ...extra,
    });
    return { verifier, advance: (ms) => (clock += ms) };
  }

  const token = () => sign(key, claims(keys.issuer));
  const outcome = (verifier: Verifier, jwt: string): Promise<string> =>
    verifier.verify(jwt).then(
      () => 'verified',
      (err: unknown) => (err instanceof TokenError ? `${err.code} ${err.status}` : `not a TokenError: ${String(err)}`),
    );

  it('fails closed on an answer whose active is not a boolean, however truthy', async () => {
    const introspection = await endpoint();
    introspection.answer = 200;
    for (const active of ['false', 'true', 1, null]) {
      introspection.active = active;
      const { verifier } = verifierFor(introspection.url);
      expect(await outcome(verifier, await token()), `active ${JSON.stringify(active)}`).toBe('temporarily_unavailable 503');
    }
  });

  it('answers 503 at once, without a request, to other tokens within the window; then one probe goes out', async () => {
    const introspection = await endpoint();
    const { verifier, advance } = verifierFor(introspection.url);
    const tokens = await Promise.all(Array.from({ length: 20 }, token));
    for (const jwt of tokens) expect(await outcome(verifier, jwt)).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(1);
    advance(999);
    expect(await outcome(verifier, tokens[1]!)).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(1);
    advance(1);
    expect(await outcome(verifier, tokens[2]!)).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(2);
    expect(await outcome(verifier, tokens[3]!)).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(2);
  });

  it('doubles the window on each consecutive failure up to 30 s, and a success resets it to 1 s', async () => {
    const introspection = await endpoint();
    const { verifier, advance } = verifierFor(introspection.url);
    expect(await outcome(verifier, await token())).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(1);
    for (const windowMs of [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]) {
      const before = introspection.hits;
      advance(windowMs - 1);
      expect(await outcome(verifier, await token()), `within ${windowMs} ms`).toBe('temporarily_unavailable 503');
      expect(introspection.hits, `within ${windowMs} ms`).toBe(before);
      advance(1);
      expect(await outcome(verifier, await token()), `after ${windowMs} ms`).toBe('temporarily_unavailable 503');
      expect(introspection.hits, `probe after ${windowMs} ms`).toBe(before + 1);
    }
    advance(30_000);
    introspection.answer = 200;
    expect(await outcome(verifier, await token())).toBe('verified');
    expect(await outcome(verifier, await token())).toBe('verified');
    introspection.answer = 500;
    const before = introspection.hits;
    expect(await outcome(verifier, await token())).toBe('temporarily_unavailable 503');
    advance(999);
    expect(await outcome(verifier, await token())).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(before + 1);
    advance(1);
    expect(await outcome(verifier, await token())).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(before + 2);
  });

  it('counts failures of concurrent requests once: the window does not jump to the cap', async () => {
    const introspection = await endpoint();
    const { verifier, advance } = verifierFor(introspection.url);
    const tokens = await Promise.all(Array.from({ length: 8 }, token));
    // Concurrent: all of them were asked before any failed.
    const outcomes = await Promise.all(tokens.map((jwt) => outcome(verifier, jwt)));
    expect(new Set(outcomes)).toEqual(new Set(['temporarily_unavailable 503']));
    const before = introspection.hits;
    advance(999);
    expect(await outcome(verifier, await token())).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(before);
    advance(1);
    introspection.answer = 200;
    expect(await outcome(verifier, await token())).toBe('verified');
    expect(introspection.hits).toBe(before + 1);
  });

  it('keeps serving cached answers, active and inactive, during the backoff', async () => {
    const introspection = await endpoint();
    const { verifier } = verifierFor(introspection.url);
    introspection.answer = 200;
    const active = await token();
    expect(await outcome(verifier, active)).toBe('verified');
    introspection.active = false;
    const revoked = await token();
    expect(await outcome(verifier, revoked)).toBe('revoked_token 401');
    introspection.answer = 500;
    expect(await outcome(verifier, await token())).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(3);
    expect(await outcome(verifier, active)).toBe('verified');
    expect(await outcome(verifier, revoked)).toBe('revoked_token 401');
    expect(await outcome(verifier, await token())).toBe('temporarily_unavailable 503');
    expect(introspection.hits).toBe(3);
  });

  it('sends one probe at a time: other tokens fail fast meanwhile, the same token shares it', async () => {
    const introspection = await endpoint();
    const { verifier, advance } = verifierFor(introspection.url, { timeoutMs: 2000 });
    expect(await outcome(verifier, await token())).toBe('temporarily_unavailable 503');
    advance(1000);
    introspection.answer = 'hang';
    const probed = await token();
    const probes = [outcome(verifier, probed), outcome(verifier, probed)];
    await expect.poll(() => introspection.hits).toBe(2);
    const others = await Promise.all(Array.from({ length: 5 }, token));
    expect(await Promise.all(others.map((jwt) => outcome(verifier, jwt)))).toEqual(others.map(() => 'temporarily_unavailable 503'));
    expect(introspection.hits).toBe(2);
    introspection.held.splice(0).forEach((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"active":true}'));
    expect(await Promise.all(probes)).toEqual(['verified', 'verified']);
    introspection.answer = 200;
    for (const jwt of others) expect(await outcome(verifier, jwt)).toBe('verified');
    expect(introspection.hits).toBe(7);
  });

  it('fails fast after a timeout rather than waiting out timeoutMs on every request', async () => {
    const introspection = await endpoint();
    introspection.answer = 'hang';
    const timeoutMs = 500;
    // The real steady clock: the window must outlast the measured requests.
    const verifier = createVerifier({
      issuer: keys.issuer,
      audience: AUDIENCE,
      now: () => NOW,
      timeoutMs,
      introspect: { url: introspection.url, clientId: 'rs', clientSecret: 'secret' },
    });
    const tokens = await Promise.all(Array.from({ length: 6 }, token));
    let started = performance.now();
    expect(await outcome(verifier, tokens[0]!)).toBe('temporarily_unavailable 503');
    expect(performance.now() - started).toBeGreaterThanOrEqual(timeoutMs - 50);
    started = performance.now();
    for (const jwt of tokens.slice(1)) expect(await outcome(verifier, jwt)).toBe('temporarily_unavailable 503');
    // Waiting out the timeout would take 5 × timeoutMs; the bound leaves room for a loaded machine.
    expect(performance.now() - started).toBeLessThan(timeoutMs);
    expect(introspection.hits).toBe(1);
  });
});
