/** The ConsentStore contract (src/stores/types.ts), against the in-memory adapter and MongoDB. */
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createMemoryConsentStore } from '../../src/stores/memory/consents.js';
import type { ConsentStore } from '../../src/stores/types.js';
import { openTestMongoStores } from '../support/mongo.js';

type ManualClock = ReturnType<typeof manualClock>;

function describeConsentStoreContract(name: string, makeStore: (clock: ManualClock) => Promise<{ store: ConsentStore; close(): Promise<void> }>): void {
  describe(`ConsentStore contract: ${name}`, () => {
    let clock: ManualClock;
    let harness: { store: ConsentStore; close(): Promise<void> };
    let store: ConsentStore;
    beforeEach(async () => {
      clock = manualClock(Date.UTC(2026, 11, 1, 12, 0, 0));
      harness = await makeStore(clock);
      store = harness.store;
    });
    afterEach(async () => {
      await harness.close();
    });

    it('remembers a consent per user and client, and widens it without losing what was allowed', async () => {
      const first = await store.grant('user-1', 'spa', ['profile']);
      expect(first).toEqual({ userId: 'user-1', clientId: 'spa', scopes: ['profile'], createdAt: new Date(clock.now()), updatedAt: new Date(clock.now()) });
      clock.advance(1000);
      const wider = await store.grant('user-1', 'spa', ['email', 'profile']);
      expect(wider.scopes).toEqual(['profile', 'email']);
      expect(wider.createdAt).toEqual(first.createdAt);
      expect(wider.updatedAt).toEqual(new Date(clock.now()));
      expect(await store.find('user-1', 'spa')).toEqual(wider);
      expect(await store.find('user-1', 'other')).toBeNull();
      expect(await store.find('user-2', 'spa')).toBeNull();
    });

    it("lists a user's consents, most recently updated first, and forgets one", async () => {
      await store.grant('user-1', 'a', ['profile']);
      clock.advance(1000);
      await store.grant('user-1', 'b', ['email']);
      await store.grant('user-2', 'a', ['email']);
      expect((await store.listByUser('user-1')).map((consent) => consent.clientId)).toEqual(['b', 'a']);
      expect(await store.revoke('user-1', 'b')).toBe(true);
      expect(await store.revoke('user-1', 'b')).toBe(false);
      expect((await store.listByUser('user-1')).map((consent) => consent.clientId)).toEqual(['a']);
      expect(await store.find('user-2', 'a')).not.toBeNull();
    });

    it('keeps every scope of concurrent grants', async () => {
      await Promise.all(['a', 'b', 'c', 'd', 'e'].map((scope) => store.grant('user-1', 'spa', [scope])));
      expect([...(await store.find('user-1', 'spa'))!.scopes].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(await store.listByUser('user-1')).toHaveLength(1);
    });
  });
}

describeConsentStoreContract('memory', async (clock) => ({ store: createMemoryConsentStore({ clock }), close: async () => undefined }));

describeConsentStoreContract('mongo', async (clock) => {
  const { stores, close } = await openTestMongoStores(inject('mongoUri'), import.meta.url, clock);
  return { store: stores.consents, close };
});
