import { describe, expect, it } from 'vitest';
import { cacheClients } from '../../src/clients/cache.js';
import { manualClock } from '../../src/clock.js';
import { createMemoryClientStore } from '../../src/stores/memory/clients.js';
import type { ClientStore, NewClient } from '../../src/stores/types.js';

const client = (clientId: string): NewClient => ({
  clientId,
  name: clientId,
  type: 'public',
  firstParty: false,
  grantTypes: ['refresh_token'],
  scopes: [],
  audiences: [],
  permissions: [],
  cookieMode: false,
  secretHash: undefined,
});

function counting(inner: ClientStore) {
  let lookups = 0;
  const store: ClientStore = { ...inner, findById: (id) => (lookups++, inner.findById(id)) };
  return { store, lookups: () => lookups };
}

describe('client cache', () => {
  it('serves repeated lookups from memory until the TTL ends, then reads again', async () => {
    const clock = manualClock();
    const inner = counting(createMemoryClientStore({ clock }));
    await inner.store.create(client('a'));
    const cached = cacheClients(inner.store, { ttlMs: 30_000, clock });
    for (let i = 0; i < 5; i += 1) expect(await cached.findById('a')).toMatchObject({ clientId: 'a' });
    expect(inner.lookups()).toBe(1);
    clock.advance(30_001);
    await cached.findById('a');
    expect(inner.lookups()).toBe(2);
  });

  it('caches unknown ids, forgets an id on create through it, and shares concurrent misses', async () => {
    const clock = manualClock();
    const inner = counting(createMemoryClientStore({ clock }));
    const cached = cacheClients(inner.store, { ttlMs: 30_000, clock });
    expect(await cached.findById('b')).toBeNull();
    expect(await cached.findById('b')).toBeNull();
    expect(inner.lookups()).toBe(1);
    await cached.create(client('b'));
    expect(await cached.findById('b')).toMatchObject({ clientId: 'b' });
    await Promise.all(Array.from({ length: 10 }, () => cached.findById('c')));
    expect(inner.lookups()).toBe(3);
  });

  it('stays bounded, evicting the oldest entries', async () => {
    const clock = manualClock();
    const inner = counting(createMemoryClientStore({ clock }));
    const cached = cacheClients(inner.store, { ttlMs: 30_000, maxEntries: 3, clock });
    for (const id of ['1', '2', '3', '4']) await cached.findById(id);
    expect(inner.lookups()).toBe(4);
    await cached.findById('4');
    await cached.findById('2');
    expect(inner.lookups()).toBe(4);
    await cached.findById('1');
    expect(inner.lookups()).toBe(5);
  });
});
