/**
 * The ClientStore contract (src/stores/types.ts), run against the in-memory adapter and
 * MongoDB (whatever backend the run uses).
 */
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createMemoryClientStore } from '../../src/stores/memory/clients.js';
import { DuplicateKeyError, type ClientStore, type NewClient } from '../../src/stores/types.js';
import { openTestMongoStores } from '../support/mongo.js';

type ManualClock = ReturnType<typeof manualClock>;

interface Harness {
  readonly store: ClientStore;
  close(): Promise<void>;
}

const confidential: NewClient = {
  clientId: 'billing-service',
  name: 'Billing service',
  type: 'confidential',
  firstParty: false,
  grantTypes: ['client_credentials'],
  scopes: ['invoices:read', 'invoices:write'],
  audiences: ['https://api.example.com/billing'],
  permissions: ['introspect', 'revoke'],
  cookieMode: false,
  secretHash: 'a3f1c0ffee0d15ea5e5ca1ab1e5eed5a3f1c0ffee0d15ea5e5ca1ab1e5eed5a',
};

const publicClient: NewClient = {
  clientId: 'web-app',
  name: 'Web app',
  type: 'public',
  firstParty: true,
  grantTypes: ['password', 'refresh_token'],
  scopes: [],
  audiences: [],
  permissions: [],
  cookieMode: true,
  redirectUris: ['https://app.example.com/callback', 'http://127.0.0.1/callback'],
  requirePar: true,
  postLogoutRedirectUris: ['https://app.example.com/signed-out'],
  backchannelLogoutUri: 'https://app.example.com/backchannel-logout',
  idTokenSignedResponseAlg: 'PS256',
  secretHash: undefined,
};

function describeClientStoreContract(name: string, makeStore: (clock: ManualClock) => Promise<Harness>): void {
  describe(`ClientStore contract: ${name}`, () => {
    let clock: ManualClock;
    let harness: Harness;
    let store: ClientStore;

    beforeEach(async () => {
      clock = manualClock(Date.UTC(2026, 2, 1, 12, 0, 0));
      harness = await makeStore(clock);
      store = harness.store;
    });
    afterEach(async () => {
      await harness.close();
    });

    it('creates a confidential client and finds it again, with every field', async () => {
      const created = await store.create(confidential);
      // The code-flow and logout fields were not given: none and false; the ID token alg: RS256 (OIDC Registration §2).
      expect(created).toEqual({
        ...confidential,
        redirectUris: [],
        requirePar: false,
        postLogoutRedirectUris: [],
        backchannelLogoutUri: undefined,
        idTokenSignedResponseAlg: 'RS256',
        createdAt: new Date(clock.now()),
      });
      expect(await store.findById('billing-service')).toEqual(created);
    });

    it('keeps a public client without a secret', async () => {
      clock.advance(5_000);
      const created = await store.create(publicClient);
      expect(created.secretHash).toBeUndefined();
      expect(created.createdAt).toEqual(new Date(clock.now()));
      const found = await store.findById('web-app');
      expect(found).toEqual({ ...publicClient, createdAt: created.createdAt });
      expect(found?.secretHash).toBeUndefined();
    });

    it('answers null for an unknown client_id', async () => {
      await store.create(confidential);
      expect(await store.findById('billing')).toBeNull();
      expect(await store.findById('')).toBeNull();
      expect(await store.findById('BILLING-SERVICE')).toBeNull();
    });

    it('rejects a taken client_id with DuplicateKeyError and keeps the first client', async () => {
      const first = await store.create(confidential);
      const error = await store.create({ ...confidential, name: 'Impostor', secretHash: 'b'.repeat(64) }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(DuplicateKeyError);
      expect((error as DuplicateKeyError).field).toBe('client_id');
      expect(await store.findById('billing-service')).toEqual(first);
    });

    it('lets exactly one of 20 concurrent creates of one client_id succeed', async () => {
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.create({ ...publicClient, name: `racer ${i}` })));
      const winners = results.filter((result) => result.status === 'fulfilled');
      expect(winners).toHaveLength(1);
      for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(DuplicateKeyError);
      expect(await store.findById('web-app')).toEqual((winners[0] as PromiseFulfilledResult<unknown>).value);
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}

describeClientStoreContract('memory', async (clock) => ({ store: createMemoryClientStore({ clock }), close: async () => undefined }));

describeClientStoreContract('mongo', async (clock) => {
  const { stores, close } = await openTestMongoStores(inject('mongoUri'), import.meta.url, clock);
  return { store: stores.clients, close };
});
