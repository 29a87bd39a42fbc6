import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { applyPlan, KeyRingError, keyFileName, loadKeyRing, planRotation, rotateKeys, type KeyMeta, type KeyRing } from '../../src/keys/index.js';
import { cryptoRandom } from '../../src/random.js';
import { createAccessTokens } from '../../src/tokens/access-token.js';
import { keyPool, MINUTE, removeTempDirs, tempKeysDir, TIMINGS } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);
const PUBLISH_WAIT = (TIMINGS.jwksMaxAge + TIMINGS.keyPromotionMargin) * 1000; // 6 min
const RETIRE_WAIT = (TIMINGS.accessTokenTtl + TIMINGS.clockSkew) * 1000; // 16 min

const meta = (kid: string, state: KeyMeta['state'], createdAt: number, extra: Partial<KeyMeta> = {}): KeyMeta => ({
  kid,
  alg: 'RS256',
  state,
  createdAt,
  activatedAt: state === 'next' ? undefined : createdAt,
  retiredAt: undefined,
  ...extra,
});

describe('planRotation', () => {
  it('on an empty ring creates an active key at once, and a next key', () => {
    const plan = planRotation([], T0, TIMINGS);
    expect(plan.steps).toEqual([
      { action: 'create', state: 'active', alg: 'RS256' },
      { action: 'create', state: 'next', alg: 'RS256' },
    ]);
    expect(plan.notes.join(' ')).toMatch(/empty/);
  });

  it('with only an active key, publishes a next key with the requested alg', () => {
    expect(planRotation([meta('A', 'active', T0)], T0, { ...TIMINGS, alg: 'ES256' }).steps).toEqual([{ action: 'create', state: 'next', alg: 'ES256' }]);
  });

  it("keeps the active key's alg for new keys unless told otherwise", () => {
    expect(planRotation([meta('A', 'active', T0, { alg: 'EdDSA' })], T0, TIMINGS).steps).toEqual([{ action: 'create', state: 'next', alg: 'EdDSA' }]);
  });

  it('refuses to promote a next key published for less than JWKS_MAX_AGE + margin, and says how long to wait', () => {
    const keys = [meta('A', 'active', T0 - 60 * MINUTE), meta('B', 'next', T0)];
    const plan = planRotation(keys, T0 + PUBLISH_WAIT - 90_000, TIMINGS);
    expect(plan.steps).toEqual([]);
    expect(plan.promotableAt).toBe(T0 + PUBLISH_WAIT);
    expect(plan.notes.join(' ')).toContain('again in 1m 30s');
    expect(plan.notes.join(' ')).toContain(new Date(T0 + PUBLISH_WAIT).toISOString().replace('.000Z', 'Z'));
  });

  it('promotes a next key published long enough, retires the active one and publishes a new next', () => {
    const keys = [meta('A', 'active', T0 - 60 * MINUTE), meta('B', 'next', T0)];
    expect(planRotation(keys, T0 + PUBLISH_WAIT, TIMINGS).steps).toEqual([
      { action: 'promote', kid: 'B' },
      { action: 'retire', kid: 'A' },
      { action: 'create', state: 'next', alg: 'RS256' },
    ]);
  });

  it('removes a retired key only once every token it signed has expired (TTL + skew)', () => {
    const keys = [meta('A', 'active', T0), meta('B', 'next', T0 + RETIRE_WAIT - MINUTE), meta('R', 'retired', T0 - 60 * MINUTE, { retiredAt: T0 })];
    expect(planRotation(keys, T0 + RETIRE_WAIT - 1, TIMINGS).steps).toEqual([]);
    expect(planRotation(keys, T0 + RETIRE_WAIT, TIMINGS).steps).toEqual([{ action: 'remove', kid: 'R', reason: 'expired' }]);
  });

  it('is idempotent: planning again right after applying a plan changes nothing', () => {
    let keys: KeyMeta[] = [];
    let counter = 0;
    for (const at of [T0, T0 + PUBLISH_WAIT, T0 + 2 * PUBLISH_WAIT + RETIRE_WAIT]) {
      const plan = planRotation(keys, at, TIMINGS);
      expect(plan.steps.length).toBeGreaterThan(0);
      keys = applyPlan(
        keys,
        plan.steps,
        at,
        plan.steps.filter((s) => s.action === 'create').map(() => `K${counter++}`),
      );
      expect(planRotation(keys, at, TIMINGS).steps).toEqual([]);
      expect(keys.filter((key) => key.state === 'active')).toHaveLength(1);
    }
  });

  it('with no active key promotes the next key at once (nothing could sign otherwise)', () => {
    expect(planRotation([meta('B', 'next', T0)], T0, TIMINGS).steps).toEqual([
      { action: 'promote', kid: 'B' },
      { action: 'create', state: 'next', alg: 'RS256' },
    ]);
  });

  it('refuses a ring with two active keys', () => {
    expect(() => planRotation([meta('A', 'active', T0), meta('B', 'active', T0)], T0, TIMINGS)).toThrow(KeyRingError);
  });

  describe('emergency', () => {
    const keys = [meta('A', 'active', T0), meta('B', 'next', T0 + 1000), meta('R', 'retired', T0 - 60 * MINUTE, { retiredAt: T0 })];

    it('removes a compromised active key and promotes the already published next key at once', () => {
      const plan = planRotation(keys, T0 + 2000, { ...TIMINGS, emergencyKid: 'A' });
      expect(plan.steps).toEqual([
        { action: 'remove', kid: 'A', reason: 'compromised' },
        { action: 'promote', kid: 'B' },
        { action: 'create', state: 'next', alg: 'RS256' },
      ]);
      expect(plan.notes.join(' ')).toMatch(/within JWKS_MAX_AGE = 5m/);
      // B was published a second ago: it signs anyway (A must stop now), and the note says what that costs.
      expect(plan.notes.join(' ')).toMatch(/B signs from now on, but was published only at .* may reject its tokens until/);
      const later = planRotation(keys, T0 + 1000 + PUBLISH_WAIT, { ...TIMINGS, emergencyKid: 'A' });
      expect(later.notes.join(' ')).toMatch(/B was already published since/);
    });

    it('without a next key, makes a fresh key active at once and says caches may not know it yet', () => {
      const plan = planRotation([keys[0]!], T0, { ...TIMINGS, emergencyKid: 'A' });
      expect(plan.steps).toEqual([
        { action: 'remove', kid: 'A', reason: 'compromised' },
        { action: 'create', state: 'active', alg: 'RS256' },
        { action: 'create', state: 'next', alg: 'RS256' },
      ]);
      expect(plan.notes.join(' ')).toMatch(/unknown kid/);
    });

    it('removes a compromised next or retired key without touching the active one', () => {
      expect(planRotation(keys, T0, { ...TIMINGS, emergencyKid: 'B' }).steps).toEqual([
        { action: 'remove', kid: 'B', reason: 'compromised' },
        { action: 'create', state: 'next', alg: 'RS256' },
      ]);
      expect(planRotation(keys, T0, { ...TIMINGS, emergencyKid: 'R' }).steps).toEqual([{ action: 'remove', kid: 'R', reason: 'compromised' }]);
    });

    it('names an unknown kid', () => {
      expect(() => planRotation(keys, T0, { ...TIMINGS, emergencyKid: 'nope' })).toThrow(/no key has kid nope/);
    });
  });
});

describe('the life of a key on disk', () => {
  afterAll(removeTempDirs);
  const generateKey = keyPool();
  const published = (ring: KeyRing) =>
    (JSON.parse(ring.jwks.body.toString()) as JSONWebKeySet).keys.map((key) => [key.kid, ring.keys.find((k) => k.kid === key.kid)?.state]);

  it('goes next → active → retired → removed, and its tokens verify against the JWKS until they expire', async () => {
    const dir = await tempKeysDir();
    const clock = manualClock(T0);
    const rotate = () => rotateKeys({ dir, clock, production: false, ...TIMINGS, generateKey });
    let ring: KeyRing = undefined as unknown as KeyRing;
    const tokens = createAccessTokens({
      keys: { current: () => ring },
      clock,
      random: cryptoRandom,
      issuer: 'https://as.test',
      ttl: TIMINGS.accessTokenTtl,
      clockSkew: TIMINGS.clockSkew,
    });
    const reload = async () => {
      ring = await loadKeyRing(dir, { production: false });
      return ring;
    };
    const verifyAgainstJwks = (token: string) =>
      jwtVerify(token, createLocalJWKSet(JSON.parse(ring.jwks.body.toString()) as JSONWebKeySet), {
        issuer: 'https://as.test',
        currentDate: new Date(clock.now()),
      });

    // t0: an empty ring gets an active key A and a published next key B.
    const first = await rotate();
    const [a, b] = first.created;
    expect([a?.state, b?.state]).toEqual(['active', 'next']);
    await reload();
    expect(published(ring)).toEqual([
      [a!.kid, 'active'],
      [b!.kid, 'next'],
    ]);
    const tokenA = await tokens.issue({ sub: 'u', aud: 'api', client_id: 'c', scope: '' });
    expect(tokenA.kid).toBe(a!.kid);

    // B is not promoted before it has been published for JWKS_MAX_AGE + margin.
    clock.set(T0 + PUBLISH_WAIT - 1000);
    const early = await rotate();
    expect(early.plan.steps).toEqual([]);
    expect(early.plan.notes.join(' ')).toMatch(/again in 1s/);
    const etagBefore = ring.jwks.etag;
    expect((await reload()).jwks.etag).toBe(etagBefore);

    // t0 + 6m: B signs, A is retired but still published; C becomes the next key.
    clock.set(T0 + PUBLISH_WAIT);
    const second = await rotate();
    const c = second.created[0]!;
    await reload();
    expect(published(ring)).toEqual([
      [b!.kid, 'active'],
      [c.kid, 'next'],
      [a!.kid, 'retired'],
    ]);
    expect((await tokens.issue({ sub: 'u', aud: 'api', client_id: 'c', scope: '' })).kid).toBe(b!.kid);
    // A token A signed before the rotation still verifies after it, until its own exp.
    await expect(verifyAgainstJwks(tokenA.token)).resolves.toBeTruthy();
    clock.set(tokenA.expiresAt - 1000);
    await expect(verifyAgainstJwks(tokenA.token)).resolves.toBeTruthy();
    expect(await tokens.verify(tokenA.token)).toMatchObject({ ok: true, kid: a!.kid });

    // One second before A's tokens are all expired (retiredAt + TTL + skew) it is still published.
    clock.set(T0 + PUBLISH_WAIT + RETIRE_WAIT - 1000);
    await rotate(); // promotes C, retires B
    await reload();
    expect(published(ring).map(([kid]) => kid)).toContain(a!.kid);
    expect(await tokens.verify(tokenA.token)).toMatchObject({ ok: false, error: 'expired' });

    // Then it is removed: gone from the manifest, the JWKS and the disk.
    clock.set(T0 + PUBLISH_WAIT + RETIRE_WAIT);
    const last = await rotate();
    expect(last.plan.steps).toContainEqual({ action: 'remove', kid: a!.kid, reason: 'expired' });
    await reload();
    expect(published(ring).map(([kid]) => kid)).not.toContain(a!.kid);
    expect(existsSync(join(dir, keyFileName(a!.kid)))).toBe(false);
    expect(await tokens.verify(tokenA.token)).toMatchObject({ ok: false, error: 'invalid' });
  });

  it('emergency: the compromised kid leaves the JWKS at once and new tokens carry the new kid', async () => {
    const dir = await tempKeysDir();
    const clock = manualClock(T0);
    const options = { dir, clock, production: false, ...TIMINGS, generateKey };
    await rotateKeys(options);
    let ring = await loadKeyRing(dir, { production: false });
    const tokens = createAccessTokens({ keys: { current: () => ring }, clock, random: cryptoRandom, issuer: 'https://as.test', ttl: 900, clockSkew: 60 });
    const compromised = ring.active.kid;
    const next = ring.keys.find((key) => key.state === 'next')!.kid;
    const stolen = await tokens.issue({ sub: 'u', aud: 'api', client_id: 'c', scope: '' });

    clock.advance(1000); // far less than the publication wait: an emergency does not wait
    const result = await rotateKeys({ ...options, emergencyKid: compromised });
    ring = await loadKeyRing(dir, { production: false });

    const kids = (JSON.parse(ring.jwks.body.toString()) as JSONWebKeySet).keys.map((key) => key.kid);
    expect(kids).not.toContain(compromised);
    expect(ring.active.kid).toBe(next);
    expect(kids).toContain(result.created[0]!.kid);
    expect(existsSync(join(dir, keyFileName(compromised)))).toBe(false);
    expect((await tokens.issue({ sub: 'u', aud: 'api', client_id: 'c', scope: '' })).kid).toBe(next);
    expect(await tokens.verify(stolen.token)).toMatchObject({ ok: false, error: 'invalid' });
  });

  it('a dry run reports the plan and changes nothing', async () => {
    const dir = await tempKeysDir();
    const clock = manualClock(T0);
    await rotateKeys({ dir, clock, production: false, ...TIMINGS, generateKey });
    const before = await loadKeyRing(dir, { production: false });
    clock.advance(PUBLISH_WAIT);
    const dry = await rotateKeys({ dir, clock, production: false, ...TIMINGS, generateKey, dryRun: true });
    expect(dry.plan.steps.map((step) => step.action)).toEqual(['promote', 'retire', 'create']);
    expect(dry.after).toBeUndefined();
    expect((await loadKeyRing(dir, { production: false })).jwks.etag).toBe(before.jwks.etag);
  });

  it('writes a .gitignore of * into a key folder it creates, and leaves a folder it did not create alone', async () => {
    const made = join(await tempKeysDir(), 'nested', 'keys');
    await rotateKeys({ dir: made, clock: manualClock(T0), production: true, ...TIMINGS, generateKey });
    expect(await readFile(join(made, '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    // Nothing in the folder trips the loader: production loads it, mode checks and all.
    expect((await loadKeyRing(made, { production: true })).keys).toHaveLength(2);
    const existing = await tempKeysDir();
    await mkdir(existing, { mode: 0o700 });
    await rotateKeys({ dir: existing, clock: manualClock(T0), production: false, ...TIMINGS, generateKey });
    expect(existsSync(join(existing, '.gitignore'))).toBe(false);
  });

  it('tightens a checked-out keys/ directory (0755) to 0700, saying so, so production can load it', async () => {
    const dir = await tempKeysDir();
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    const result = await rotateKeys({ dir, clock: manualClock(T0), production: true, ...TIMINGS, generateKey });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(result.warnings).toContainEqual(expect.stringMatching(/readable by other users: its mode is now 0700/));
    expect((await loadKeyRing(dir, { production: true })).keys).toHaveLength(2);
  });
});

describe('dates are taken at commit time (issue 23 item 9)', () => {
  afterAll(removeTempDirs);
  const generateKey = keyPool();
  it('a stall between the plan and the manifest is not subtracted from the publication window nor backdates retiredAt', async () => {
    const dir = await tempKeysDir();
    const clock = manualClock(T0);
    const STALL = 5 * MINUTE;
    // Key generation (or a slow fsync, a paused VM) stalls for 5 minutes after the plan.
    const stalling = async (alg: Parameters<typeof generateKey>[0]) => {
      const key = await generateKey(alg);
      clock.advance(STALL);
      return key;
    };
    const first = await rotateKeys({ dir, clock, production: false, ...TIMINGS, generateKey: stalling });
    // Two keys, each generated with a stall: both are stamped after both stalls.
    expect(first.after!.map((key) => key.createdAt)).toEqual([T0 + 2 * STALL, T0 + 2 * STALL]);
    expect(first.after!.find((key) => key.state === 'active')!.activatedAt).toBe(T0 + 2 * STALL);
    expect(first.committedAt).toBe(T0 + 2 * STALL);

    // A promotion planned just in time: the retiring key's retiredAt is when the manifest says so.
    const next = first.after!.find((key) => key.state === 'next')!;
    clock.set(next.createdAt + (TIMINGS.jwksMaxAge + TIMINGS.keyPromotionMargin) * 1000);
    const plannedAt = clock.now();
    const second = await rotateKeys({ dir, clock, production: false, ...TIMINGS, generateKey: stalling });
    expect(second.plan.steps.map((step) => step.action)).toEqual(['promote', 'retire', 'create']);
    const retired = second.after!.find((key) => key.state === 'retired')!;
    expect(retired.retiredAt).toBe(plannedAt + STALL);
    expect(second.after!.find((key) => key.kid === next.kid)!.activatedAt).toBe(plannedAt + STALL);
    expect(second.after!.find((key) => key.state === 'next')!.createdAt).toBe(plannedAt + STALL);
    // What the server reads agrees.
    const ring = await loadKeyRing(dir, { production: false });
    expect(ring.keys.find((key) => key.kid === retired.kid)!.retiredAt).toBe(plannedAt + STALL);
  });

  it('a commit stalled after the dates were taken (a slow manifest fsync) is stamped again', async () => {
    const dir = await tempKeysDir();
    const clock = manualClock(T0);
    let stalls = 1;
    const result = await rotateKeys({
      dir,
      clock,
      production: false,
      ...TIMINGS,
      generateKey,
      onManifestWritten: () => {
        if (stalls-- > 0) clock.advance(5 * MINUTE);
      },
    });
    expect(result.committedAt).toBe(T0 + 5 * MINUTE);
    expect(result.after!.map((key) => key.createdAt)).toEqual([T0 + 5 * MINUTE, T0 + 5 * MINUTE]);
    const ring = await loadKeyRing(dir, { production: false });
    expect(ring.keys.map((key) => key.createdAt)).toEqual([T0 + 5 * MINUTE, T0 + 5 * MINUTE]);
  });
});
