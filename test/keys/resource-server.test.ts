/**
 * The property rotation exists for: a resource server that caches the JWKS for exactly its
 * max-age never meets an unexpired token it cannot verify, across whole key lifetimes.
 */
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { loadKeyRing, rotateKeys, type KeyAlg, type KeyRing, type RotationTimings } from '../../src/keys/index.js';
import { cryptoRandom } from '../../src/random.js';
import { createAccessTokens, type IssuedAccessToken } from '../../src/tokens/access-token.js';
import { keyPool, MINUTE, removeTempDirs, tempKeysDir, TIMINGS } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);
const ISSUER = 'https://as.test';
const STEP = 30_000;
/** keys:rotate runs far more often than needed: only its own waiting rules may keep the ring safe. */
const CRON_EVERY = MINUTE;
/** The server notices a rotation one step (30 s) late, like a polling reload would. */
const RELOAD_LAG_STEPS = 1;

interface Outcome {
  verified: number;
  failures: number;
  /** Kids seen in every state next → active → retired and then removed. */
  fullLifecycles: number;
}

async function simulate(plannedWith: RotationTimings, alg: KeyAlg, minutes: number): Promise<Outcome> {
  const dir = await tempKeysDir();
  const clock = manualClock(T0);
  const generateKey = keyPool();
  const rotate = () => rotateKeys({ dir, clock, production: false, ...plannedWith, alg, generateKey });
  await rotate();
  let ring: KeyRing = await loadKeyRing(dir, { production: false });
  const tokens = createAccessTokens({
    keys: { current: () => ring },
    clock,
    random: cryptoRandom,
    issuer: ISSUER,
    ttl: TIMINGS.accessTokenTtl,
    clockSkew: TIMINGS.clockSkew,
  });

  // Resource servers first fetch at different moments, then whenever their copy is older than max-age.
  const servers = [0, 130_000, 250_000].map((firstFetch) => ({
    firstFetch,
    cache: undefined as { jwks: ReturnType<typeof createLocalJWKSet>; fetchedAt: number } | undefined,
  }));
  const issued: IssuedAccessToken[] = [];
  const seen = new Map<string, Set<string>>();
  let reloadIn = -1;
  let verified = 0;
  let failures = 0;

  for (let t = 0; t <= minutes * MINUTE; t += STEP) {
    const now = T0 + t;
    clock.set(now);
    if (reloadIn-- === 0) ring = await loadKeyRing(dir, { production: false });
    if (t > 0 && t % CRON_EVERY === 0 && (await rotate()).plan.steps.length > 0) reloadIn = RELOAD_LAG_STEPS - 1;
    for (const key of ring.keys) seen.set(key.kid, (seen.get(key.kid) ?? new Set()).add(key.state));
    for (const kid of seen.keys()) if (!ring.keys.some((key) => key.kid === kid)) seen.get(kid)!.add('removed');

    issued.push(await tokens.issue({ sub: 'u', aud: 'api', client_id: 'c', scope: '' }));
    for (const server of servers) {
      if (t < server.firstFetch) continue;
      if (server.cache === undefined || now >= server.cache.fetchedAt + TIMINGS.jwksMaxAge * 1000) {
        server.cache = { jwks: createLocalJWKSet(JSON.parse(ring.jwks.body.toString()) as JSONWebKeySet), fetchedAt: now };
      }
      for (const token of sample(issued, now)) {
        try {
          await jwtVerify(token.token, server.cache.jwks, { issuer: ISSUER, typ: 'at+jwt', currentDate: new Date(now) });
          verified++;
        } catch {
          failures++;
        }
      }
    }
  }
  const fullLifecycles = [...seen.values()].filter((states) => ['next', 'active', 'retired', 'removed'].every((state) => states.has(state))).length;
  return { verified, failures, fullLifecycles };
}

/**
 * Tokens signed by one key stand or fall together (the cache has the kid or not), apart from
 * expiry: the oldest and newest unexpired token of each kid cover them all.
 */
function sample(issued: readonly IssuedAccessToken[], now: number): IssuedAccessToken[] {
  const byKid = new Map<string, IssuedAccessToken[]>();
  for (const token of issued) {
    if (token.expiresAt > now) byKid.set(token.kid, [...(byKid.get(token.kid) ?? []), token]);
  }
  return [...byKid.values()].flatMap((tokens) => (tokens.length > 1 ? [tokens[0]!, tokens.at(-1)!] : tokens));
}

describe('a resource server caching the JWKS for max-age', () => {
  afterAll(removeTempDirs);

  it('verifies every unexpired token across two full rotations', async () => {
    const outcome = await simulate(TIMINGS, 'RS256', 40);
    expect(outcome.fullLifecycles).toBeGreaterThanOrEqual(2);
    expect(outcome.verified).toBeGreaterThan(500);
    expect(outcome.failures).toBe(0);
  });

  it('(control) would fail if keys were promoted without waiting for caches', async () => {
    const outcome = await simulate({ ...TIMINGS, jwksMaxAge: 0, keyPromotionMargin: 0 }, 'ES256', 15);
    expect(outcome.failures).toBeGreaterThan(0);
  });
});
