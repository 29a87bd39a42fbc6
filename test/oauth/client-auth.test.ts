/**
 * The client-auth throttle's local memory of refused pairs, with in-process stores (the
 * shared-Redis behaviour across two instances is in test/http/throttling.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { clientSecretMatches, hashClientSecret } from '../../src/clients/secrets.js';
import { manualClock } from '../../src/clock.js';
import { InvalidClientError, TooManyRequestsError } from '../../src/errors.js';
import { createClientAuthenticator } from '../../src/oauth/client-auth.js';
import { createMemoryClientStore } from '../../src/stores/memory/clients.js';
import { createMemoryRateLimits } from '../../src/stores/memory/rate-limits.js';
import type { RateLimiter } from '../../src/stores/types.js';

const SECRET = 'a'.repeat(43);

async function setup(points: number, limiter?: RateLimiter) {
  const clock = manualClock(Date.now());
  const clients = createMemoryClientStore({ clock });
  await clients.create({
    clientId: 'svc',
    name: 'Service',
    type: 'confidential',
    firstParty: false,
    grantTypes: ['client_credentials'],
    scopes: ['read'],
    audiences: [],
    permissions: [],
    cookieMode: false,
    secretHash: hashClientSecret(SECRET),
  });
  const failures = limiter ?? createMemoryRateLimits().limiter({ keyPrefix: 'client-auth', points, durationSec: 900 });
  const auth = createClientAuthenticator({ clients, failures, clock });
  const attempt = (secret: string, ip: string) => auth.authenticate({ method: 'client_secret_basic', clientId: 'svc', clientSecret: secret }, ip);
  return { clock, attempt };
}

describe('client authentication throttle', () => {
  it('answers 401 within the budget, 429 past it, and then refuses even the right secret from that pair', async () => {
    const { attempt } = await setup(2);
    await expect(attempt('wrong', '10.0.0.1')).rejects.toBeInstanceOf(InvalidClientError);
    await expect(attempt('wrong', '10.0.0.1')).rejects.toBeInstanceOf(InvalidClientError);
    const refused = await attempt('wrong', '10.0.0.1').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(TooManyRequestsError);
    expect((refused as TooManyRequestsError).headers['Retry-After']).toMatch(/^[1-9]\d*$/);
    await expect(attempt(SECRET, '10.0.0.1')).rejects.toBeInstanceOf(TooManyRequestsError);
    // Another address is another pair.
    await expect(attempt(SECRET, '10.0.0.2')).resolves.toMatchObject({ clientId: 'svc' });
  });

  it('counts an IPv6 /64 as one address, as logins do', async () => {
    const { attempt } = await setup(2);
    await expect(attempt('wrong', '2001:db8::1')).rejects.toBeInstanceOf(InvalidClientError);
    await expect(attempt('wrong', '2001:db8::2')).rejects.toBeInstanceOf(InvalidClientError);
    await expect(attempt('wrong', '2001:db8::3')).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(attempt(SECRET, '2001:db8::ffff:1')).rejects.toBeInstanceOf(TooManyRequestsError);
    // The next /64 is another network.
    await expect(attempt(SECRET, '2001:db8:0:1::1')).resolves.toMatchObject({ clientId: 'svc' });
  });

  it('forgets a refused pair when its window ends', async () => {
    const { clock, attempt } = await setup(1);
    await expect(attempt('wrong', '10.0.0.1')).rejects.toBeInstanceOf(InvalidClientError);
    await expect(attempt('wrong', '10.0.0.1')).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(attempt(SECRET, '10.0.0.1')).rejects.toBeInstanceOf(TooManyRequestsError);
    clock.advance(901_000);
    await expect(attempt(SECRET, '10.0.0.1')).resolves.toMatchObject({ clientId: 'svc' });
  });

  it('keeps at most 10,000 refused pairs in memory, forgetting the oldest first', async () => {
    const { attempt } = await setup(0);
    const ips = Array.from({ length: 10_001 }, (_, index) => `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`);
    for (const ip of ips) await expect(attempt('wrong', ip)).rejects.toBeInstanceOf(TooManyRequestsError);
    // The oldest was forgotten: its right secret is checked again, and accepted.
    await expect(attempt(SECRET, ips[0]!)).resolves.toMatchObject({ clientId: 'svc' });
    await expect(attempt(SECRET, ips[10_000]!)).rejects.toBeInstanceOf(TooManyRequestsError);
  });
  // Parity: pinned against the hand-written map of refused pairs before lru-cache replaced it.
  it('refuses a pair until the last millisecond of its window, with Retry-After counting down', async () => {
    const { clock, attempt } = await setup(0);
    const refused = (await attempt('wrong', '10.0.0.1').catch((err: unknown) => err)) as TooManyRequestsError;
    expect(refused.headers['Retry-After']).toBe('900');
    clock.advance(899_000);
    const later = (await attempt(SECRET, '10.0.0.1').catch((err: unknown) => err)) as TooManyRequestsError;
    expect(later).toBeInstanceOf(TooManyRequestsError);
    expect(later.headers['Retry-After']).toBe('1');
    clock.advance(999);
    await expect(attempt(SECRET, '10.0.0.1')).rejects.toBeInstanceOf(TooManyRequestsError);
    clock.advance(2);
    await expect(attempt(SECRET, '10.0.0.1')).resolves.toMatchObject({ clientId: 'svc' });
  });

  it('does not remember a refusal whose window has already ended', async () => {
    const failures: RateLimiter = { consume: async () => ({ allowed: false, remaining: 0, retryAfterMs: 0 }), reset: async () => {} };
    const { attempt } = await setup(0, failures);
    await expect(attempt('wrong', '10.0.0.1')).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(attempt(SECRET, '10.0.0.1')).resolves.toMatchObject({ clientId: 'svc' });
  });

  it('when full, forgets a pair whose window ended before one still refused, however recently each was refused', async () => {
    // Every failure is refused, for as long as `retryMs` says: windows of chosen lengths.
    let retryMs = 0;
    const failures: RateLimiter = {
      consume: async () => ({ allowed: false, remaining: 0, retryAfterMs: retryMs }),
      reset: async () => {},
    };
    const { clock, attempt } = await setup(0, failures);
    const ip = (index: number) => `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
    const start = clock.now();
    retryMs = 1_400_000;
    await expect(attempt('wrong', 'fd00:1::1')).rejects.toBeInstanceOf(TooManyRequestsError); // Y: refused first, until 1400 s
    clock.set(start + 100_000);
    retryMs = 200_000;
    await expect(attempt('wrong', 'fd00::1')).rejects.toBeInstanceOf(TooManyRequestsError); // X: refused later, until 300 s
    clock.set(start + 1_000_000);
    retryMs = 900_000;
    for (let index = 0; index < 9_999; index += 1) await expect(attempt('wrong', ip(index))).rejects.toBeInstanceOf(TooManyRequestsError);
    // The 10,001st pair made room by dropping X, whose window was over, not Y.
    await expect(attempt(SECRET, 'fd00:1::1')).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(attempt(SECRET, ip(0))).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(attempt(SECRET, ip(9_998))).rejects.toBeInstanceOf(TooManyRequestsError);
  });
});

describe('client secrets', () => {
  it('match only the whole stored hash: any one byte changed, or cut short, does not match', () => {
    const stored = hashClientSecret(SECRET);
    expect(clientSecretMatches(SECRET, stored)).toBe(true);
    for (let index = 0; index < stored.length; index += 2) {
      const byte = Number.parseInt(stored.slice(index, index + 2), 16) ^ 0x01;
      const changed = `${stored.slice(0, index)}${byte.toString(16).padStart(2, '0')}${stored.slice(index + 2)}`;
      expect(clientSecretMatches(SECRET, changed), `byte ${index / 2}`).toBe(false);
    }
    expect(clientSecretMatches(SECRET, stored.slice(0, 32))).toBe(false);
    expect(clientSecretMatches(SECRET, undefined)).toBe(false);
    expect(clientSecretMatches('', hashClientSecret(''))).toBe(true);
  });
});
