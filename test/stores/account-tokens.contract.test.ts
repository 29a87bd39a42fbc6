/**
 * AccountTokenStore contract, on the in-process store and on a real Redis: one record per
 * purpose and user, replaced by a newer one, taken once (only with its hash), gone after its TTL.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createMemoryAccountTokenStore } from '../../src/stores/memory/account-tokens.js';
import { createRedisAccountTokenStore } from '../../src/stores/redis/account-tokens.js';
import type { AccountTokenStore } from '../../src/stores/types.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const record = (hash: string) => ({ hash, binding: 'ada@example.com', expiresAt: Date.UTC(2030, 0, 1) });

function contract(name: string, make: () => { store: AccountTokenStore; expire: () => Promise<void> }) {
  describe(`AccountTokenStore contract: ${name}`, () => {
    let store: AccountTokenStore;
    let expire: () => Promise<void>;
    beforeEach(() => {
      ({ store, expire } = make());
    });

    it('keeps one record per purpose and user; a newer one replaces it', async () => {
      await store.put('password-reset', 'u1', record('h1'), 60_000);
      await store.put('email-verify', 'u1', record('v1'), 60_000);
      await store.put('password-reset', 'u1', record('h2'), 60_000);
      expect(await store.get('password-reset', 'u1')).toEqual(record('h2'));
      expect(await store.get('email-verify', 'u1')).toEqual(record('v1'));
      expect(await store.get('password-reset', 'u2')).toBeNull();
    });

    it('is taken once, and only with the hash it holds', async () => {
      await store.put('email-change', 'u3', record('h3'), 60_000);
      expect(await store.take('email-change', 'u3', 'other')).toBe(false);
      const results = await Promise.all(Array.from({ length: 10 }, () => store.take('email-change', 'u3', 'h3')));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.get('email-change', 'u3')).toBeNull();
      expect(await store.take('email-change', 'u3', 'h3')).toBe(false);
    });

    it('is gone after its TTL', async () => {
      await store.put('email-verify', 'u4', record('h4'), 50);
      await expire();
      expect(await store.get('email-verify', 'u4')).toBeNull();
      expect(await store.take('email-verify', 'u4', 'h4')).toBe(false);
    });
  });
}

contract('memory', () => {
  const clock = manualClock();
  return { store: createMemoryAccountTokenStore({ clock }), expire: async () => clock.advance(60) };
});

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});
contract('redis', () => ({
  store: createRedisAccountTokenStore({ redis: redis.client }),
  expire: () => new Promise((resolve) => setTimeout(resolve, 120)),
}));
