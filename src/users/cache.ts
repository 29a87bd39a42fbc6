/**
 * An in-process cache of user records for the refresh path, where reading MongoDB on
 * every refresh would be the largest cost (issue 18 item 2). Bounded (least recently used
 * evicted) and with a TTL, which bounds how long a change made behind the service's back
 * (a hand edit in the database) goes unseen. Every change made through the service is
 * published on a `UserChangeFeed` and drops the record on every instance; while the feed
 * is not live (Redis pub/sub reconnecting) nothing is served from the cache, and each
 * reset empties it. Unknown users are not cached.
 *
 * Only reads that may be stale by the invalidation latency use it: a login's checks and a
 * password change read the store itself.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';
import type { UserChangeFeed, UserRecord, UserStore } from '../stores/types.js';

/**
 * How long after a store read began another caller may still join it: a herd of misses
 * arrives within milliseconds, while the refresh path gives up on a user read only after
 * 500 ms at least (`refreshUserTimeoutMs`), so its retry never waits on the read it gave up on.
 */
export const USER_READ_JOIN_WINDOW_MS = 250;

export interface UserCache {
  findById(id: string): Promise<UserRecord | null>;
}

export function createUserCache(
  inner: Pick<UserStore, 'findById'>,
  { feed, ttlMs, maxEntries = 10_000, clock }: { feed: UserChangeFeed; ttlMs: number; maxEntries?: number; clock: Clock },
): UserCache {
  // lru-cache reads a TTL of 0 as "forever"; here it means no cache.
  if (ttlMs <= 0) return { findById: (id) => inner.findById(id) };
  const entries = new LRUCache<string, UserRecord>({ max: maxEntries, ttl: ttlMs, perf: clock, ttlResolution: 0 });
  /** Bumped by every invalidation: a read begun before one must not cache what it read. */
  let epoch = 0;
  /**
   * The store read in flight for a user, if any, with the epoch and time it began in. Hand-written
   * rather than lru-cache's `fetch()`, which coalesces too: its fetch is aborted by the
   * `delete` an invalidation makes, failing every caller waiting on it, where here they get
   * the read they joined and only later callers read again.
   */
  const reads = new Map<string, { epoch: number; at: number; read: Promise<UserRecord | null> }>();
  feed.subscribe({
    changed(userId) {
      epoch += 1;
      entries.delete(userId);
    },
    reset() {
      epoch += 1;
      entries.clear();
    },
  });

  return {
    async findById(id) {
      if (!feed.live()) {
        // Whatever was cached may have missed a change meanwhile.
        epoch += 1;
        entries.clear();
        return inner.findById(id);
      }
      const hit = entries.get(id);
      if (hit) return hit;
      // When an entry expires under load, every tab of that user misses at once: one read
      // answers them all. Only a read begun since the last invalidation may be joined (it
      // is then as fresh as a new one would be), and only within the join window.
      const inFlight = reads.get(id);
      const now = clock.now();
      if (inFlight?.epoch === epoch && now - inFlight.at < USER_READ_JOIN_WINDOW_MS) return inFlight.read;
      const started = epoch;
      const read = inner.findById(id).then(
        (user) => {
          if (reads.get(id)?.read === read) reads.delete(id);
          if (user && started === epoch && feed.live()) entries.set(id, user);
          return user;
        },
        (err: unknown) => {
          if (reads.get(id)?.read === read) reads.delete(id);
          throw err;
        },
      );
      reads.set(id, { epoch: started, at: now, read });
      return read;
    },
  };
}

/**
 * The user store with every write that changes what a token carries (roles, disabled,
 * a password change, a deletion, the address or its verification) published on `feed` once it is stored. A failed publish
 * fails the call, after the write: the caller learns that other instances may serve the
 * old record until the cache's TTL.
 */
export function publishUserChanges(inner: UserStore, feed: UserChangeFeed): UserStore {
  return {
    ...inner,
    async setPasswordHash(id, passwordHash, options) {
      const changed = await inner.setPasswordHash(id, passwordHash, options);
      // A re-hash of the same password changes nothing a token carries.
      if (changed && options.change) await feed.publish(id);
      return changed;
    },
    async update(id, changes) {
      const user = await inner.update(id, changes);
      if (user) await feed.publish(id);
      return user;
    },
    async delete(id) {
      const deleted = await inner.delete(id);
      await feed.publish(id);
      return deleted;
    },
    // The address and whether it is verified are in every token (email, email_verified).
    async changeEmail(id, from, to) {
      const changed = await inner.changeEmail(id, from, to);
      if (changed) await feed.publish(id);
      return changed;
    },
    async markEmailVerified(id, email) {
      const changed = await inner.markEmailVerified(id, email);
      if (changed) await feed.publish(id);
      return changed;
    },
  };
}
