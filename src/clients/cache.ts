/**
 * An in-process cache in front of the client store. Every token, revocation and
 * introspection request looks its client up; caching the record for a short TTL removes a
 * database round trip from that hot path. The price: a client changed or removed in the
 * database is seen by each instance within `ttlMs`. Unknown ids are cached too (so junk
 * ids cannot hammer the database), and the cache is bounded, the least recently used
 * entries evicted first. A change or deletion made through this cache (the admin API)
 * drops the entry at once on this instance; other instances see it within `ttlMs`.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';
import type { ClientRecord, ClientStore } from '../stores/types.js';

export function cacheClients(inner: ClientStore, { ttlMs, maxEntries = 10_000, clock }: { ttlMs: number; maxEntries?: number; clock: Clock }): ClientStore {
  // lru-cache reads a TTL of 0 as "forever"; here it means no cache.
  if (ttlMs <= 0) return inner;
  // Wrapped, since lru-cache stores no null and unknown ids are cached too. The TTL counts
  // from the lookup; hits do not extend it.
  const entries = new LRUCache<string, { record: ClientRecord | null }>({ max: maxEntries, ttl: ttlMs, perf: clock, ttlResolution: 0 });
  const pending = new Map<string, Promise<ClientRecord | null>>();
  /** Bumped by each write through this cache: a lookup begun before it must not cache its answer. */
  const generations = new Map<string, number>();

  async function load(clientId: string): Promise<ClientRecord | null> {
    const generation = generations.get(clientId) ?? 0;
    const record = await inner.findById(clientId);
    if ((generations.get(clientId) ?? 0) !== generation) return record;
    entries.set(clientId, { record });
    return record;
  }

  function invalidate(clientId: string): void {
    generations.set(clientId, (generations.get(clientId) ?? 0) + 1);
    entries.delete(clientId);
    pending.delete(clientId);
  }

  return {
    ping: () => inner.ping(),
    async create(client) {
      const created = await inner.create(client);
      invalidate(created.clientId);
      return created;
    },
    list: (page) => inner.list(page),
    async update(clientId, changes) {
      // Before and after: a lookup that read the old record while the write ran must not keep it.
      invalidate(clientId);
      try {
        return await inner.update(clientId, changes);
      } finally {
        invalidate(clientId);
      }
    },
    async delete(clientId) {
      invalidate(clientId);
      try {
        return await inner.delete(clientId);
      } finally {
        invalidate(clientId);
      }
    },
    findById(clientId) {
      const hit = entries.get(clientId);
      if (hit) return Promise.resolve(hit.record);
      // Concurrent misses for one id share a single lookup.
      const shared = pending.get(clientId);
      if (shared) return shared;
      const loading: Promise<ClientRecord | null> = load(clientId).finally(() => {
        // A create may have replaced this lookup with a newer one meanwhile: leave that one.
        if (pending.get(clientId) === loading) pending.delete(clientId);
      });
      pending.set(clientId, loading);
      return loading;
    },
  };
}
