/**
 * Key rotation as a running verifier sees it, driven by the real rotation code on the
 * authority's key directory and the real JWKS route: nothing restarts, nothing sleeps
 * (the verifier's clock is moved instead).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { rotateKeys } from '../../src/keys/index.js';
import { createVerifier, type FetchLike, type Verifier } from '../../packages/verifier/src/index.js';
import { startAuthority, type RunningAuthority } from './real-authority.js';

let authority: RunningAuthority | undefined;
afterEach(async () => {
  await authority?.stop();
  authority = undefined;
});

interface Setup {
  authority: RunningAuthority;
  verifier: Verifier;
  jwksFetches: () => number;
  advance(ms: number): void;
  /** One `keys:rotate` step at `at` (ms), then the server reloads its ring. */
  rotate(at: number, emergencyKid?: string): Promise<void>;
}

async function setUp(): Promise<Setup> {
  authority = await startAuthority();
  const running = authority;
  const { config } = running.service;
  let fetches = 0;
  const counting: FetchLike = (url, init) => {
    if (url.endsWith('/jwks.json')) fetches++;
    return fetch(url, init);
  };
  let offset = 0;
  const verifier = createVerifier({
    issuer: running.url,
    audience: config.audience,
    fetch: counting,
    now: () => Date.now() + offset,
    elapsed: () => performance.now() + offset,
  });
  return {
    authority: running,
    verifier,
    jwksFetches: () => fetches,
    advance: (ms) => (offset += ms),
    async rotate(at, emergencyKid) {
      await rotateKeys({
        dir: config.keysDir,
        clock: manualClock(at),
        production: false,
        jwksMaxAge: config.jwksMaxAge,
        keyPromotionMargin: config.keyPromotionMargin,
        accessTokenTtl: config.accessTokenTtl,
        clockSkew: config.clockSkew,
        ...(emergencyKid !== undefined && { emergencyKid }),
      });
      await running.service.keys.reload();
    },
  };
}

const kidOf = (token: string): string => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;

describe('key rotation seen by a running verifier', () => {
  it("verifies a freshly promoted key without a restart, and the retired key's tokens alongside", async () => {
    const { authority, verifier, jwksFetches, advance, rotate } = await setUp();
    const { config } = authority.service;
    const oldToken = await authority.clientCredentialsToken();
    await verifier.verify(oldToken);
    expect(jwksFetches()).toBe(1);

    // The normal life: a `next` key is published, and promoted only after JWKS_MAX_AGE + margin.
    const t0 = Date.now();
    await rotate(t0);
    // The verifier's cache expires within max-age and the refetch brings the next key in...
    advance(config.jwksMaxAge * 1000 + 1000);
    await verifier.verify(oldToken);
    expect(jwksFetches()).toBe(2);
    await rotate(t0 + (config.jwksMaxAge + config.keyPromotionMargin) * 1000 + 1000);
    const newToken = await authority.clientCredentialsToken();
    expect(kidOf(newToken)).not.toBe(kidOf(oldToken));
    // ...so the first token of the promoted key verifies from the cache, with no request.
    await expect(verifier.verify(newToken)).resolves.toMatchObject({ kid: kidOf(newToken), sub: 'demo-service' });
    expect(jwksFetches()).toBe(2);
    // The retired key is still published: its tokens keep verifying, across refetches.
    advance(config.jwksMaxAge * 1000 + 1000);
    await expect(verifier.verify(oldToken)).resolves.toMatchObject({ kid: kidOf(oldToken) });
    expect(jwksFetches()).toBe(3);
  });

  it('meets a key it has never seen with one refetch, once the cooldown allows', async () => {
    const { authority, verifier, jwksFetches, advance, rotate } = await setUp();
    const { config } = authority.service;
    const oldToken = await authority.clientCredentialsToken();
    await verifier.verify(oldToken);

    // Promoted behind the verifier's back: its cached set has never held the new key.
    const t0 = Date.now();
    await rotate(t0);
    await rotate(t0 + (config.jwksMaxAge + config.keyPromotionMargin) * 1000 + 1000);
    const newToken = await authority.clientCredentialsToken();
    // Within the cooldown of the last fetch the kid stays unknown...
    await expect(verifier.verify(newToken)).rejects.toMatchObject({ code: 'invalid_token' });
    expect(jwksFetches()).toBe(1);
    // ...and after it, one refetch finds it; the old key's tokens still verify.
    advance(30_000);
    await expect(verifier.verify(newToken)).resolves.toMatchObject({ kid: kidOf(newToken) });
    await expect(verifier.verify(oldToken)).resolves.toMatchObject({ kid: kidOf(oldToken) });
    expect(jwksFetches()).toBe(2);
  });

  it('drops an emergency-removed key once its cached set expires', async () => {
    const { authority, verifier, advance, rotate } = await setUp();
    const { config } = authority.service;
    const compromised = await authority.passwordToken();
    await verifier.verify(compromised);
    await rotate(Date.now(), kidOf(compromised));
    expect(kidOf(await authority.passwordToken())).not.toBe(kidOf(compromised));
    // Still cached: a verifier cannot know before its copy expires (the reason for a short JWKS_MAX_AGE).
    await expect(verifier.verify(compromised)).resolves.toBeDefined();
    advance(config.jwksMaxAge * 1000 + 1000);
    await expect(verifier.verify(compromised)).rejects.toMatchObject({ code: 'invalid_token', description: 'the token is signed with an unknown key' });
  });
});
