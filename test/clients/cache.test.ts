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

  it('does not let a lookup that began before a create through it cache the id as unknown', async () => {
    const clock = manualClock();
    const inner = createMemoryClientStore({ clock });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // A lookup that read "no such client" and answers only after the create has finished.
    const slow: ClientStore = {
      ...inner,
      findById: async (id) => {
        const found = await inner.findById(id);
        await held;
        return found;
      },
    };
    const cached = cacheClients(slow, { ttlMs: 30_000, clock });
    const early = cached.findById('new-app');
    await new Promise((resolve) => setImmediate(resolve));
    await cached.create(client('new-app'));
    release();
    expect(await early).toBeNull();
    expect(await cached.findById('new-app')).toMatchObject({ clientId: 'new-app' });
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

  // Parity: pinned against the hand-written TTL map before lru-cache replaced it.
  it('counts the TTL from the lookup, not from later hits: a hit just before the end does not extend it', async () => {
    const clock = manualClock();
    const inner = counting(createMemoryClientStore({ clock }));
    await inner.store.create(client('a'));
    const cached = cacheClients(inner.store, { ttlMs: 30_000, clock });
    await cached.findById('a');
    clock.advance(29_999);
    await cached.findById('a');
    expect(inner.lookups()).toBe(1);
    clock.advance(2);
    await cached.findById('a');
    expect(inner.lookups()).toBe(2);
    clock.advance(29_999);
    await cached.findById('a');
    expect(inner.lookups()).toBe(2);
  });

  it('keeps answering "unknown" for a client created behind its back until the TTL ends', async () => {
    const clock = manualClock();
    const inner = counting(createMemoryClientStore({ clock }));
    const cached = cacheClients(inner.store, { ttlMs: 30_000, clock });
    expect(await cached.findById('elsewhere')).toBeNull();
    await inner.store.create(client('elsewhere'));
    clock.advance(29_999);
    expect(await cached.findById('elsewhere')).toBeNull();
    clock.advance(2);
    expect(await cached.findById('elsewhere')).toMatchObject({ clientId: 'elsewhere' });
  });

  it('with a TTL of 0 caches nothing', async () => {
    const clock = manualClock();
    const inner = counting(createMemoryClientStore({ clock }));
    const cached = cacheClients(inner.store, { ttlMs: 0, clock });
    await cached.findById('a');
    await cached.findById('a');
    expect(inner.lookups()).toBe(2);
  });
});
