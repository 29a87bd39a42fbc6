/**
 * The user cache (src/users/cache.ts) over the embedded user store: what it serves, and
 * every way an entry leaves it. Across instances over real Redis: cache.instances.test.ts.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createMemoryUserChangeFeed } from '../../src/stores/memory/user-changes.js';
import { createMemoryUserStore } from '../../src/stores/memory/users.js';
import type { UserChangeFeed, UserStore } from '../../src/stores/types.js';
import { createUserCache, publishUserChanges, USER_READ_JOIN_WINDOW_MS } from '../../src/users/cache.js';

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo';

/** A feed whose liveness and resets the test drives, as a Redis reconnect would. */
function controlledFeed(): UserChangeFeed & { setLive(live: boolean): void; resetAll(): void } {
  const inner = createMemoryUserChangeFeed();
  const listeners: { reset(): void }[] = [];
  let live = true;
  return {
    ...inner,
    subscribe(listener) {
      listeners.push(listener);
      inner.subscribe(listener);
    },
    live: () => live,
    setLive: (value) => (live = value),
    resetAll: () => listeners.forEach((listener) => listener.reset()),
  };
}

describe('user cache', () => {
  const clock = manualClock();
  let store: UserStore;
  let feed: ReturnType<typeof controlledFeed>;
  let reads: number;
  let cache: ReturnType<typeof createUserCache>;
  let id: string;

  beforeEach(async () => {
    feed = controlledFeed();
    const raw = createMemoryUserStore({ clock });
    reads = 0;
    const counted: UserStore = { ...raw, findById: (userId) => ((reads += 1), raw.findById(userId)) };
    store = publishUserChanges(counted, feed);
    cache = createUserCache(store, { feed, ttlMs: 60_000, clock });
    id = (await store.create({ email: 'c@example.com', passwordHash: HASH, roles: ['user'] })).id;
  });

  it('serves a hit without reading the store, until the TTL', async () => {
    await cache.findById(id);
    await cache.findById(id);
    expect(reads).toBe(1);
    clock.advance(60_001);
    await cache.findById(id);
    expect(reads).toBe(2);
  });

  it('drops a user on a role change, a disable, a password change and a deletion made through the store', async () => {
    await cache.findById(id);
    await store.update(id, { roles: ['user', 'auditor'] });
    expect((await cache.findById(id))?.roles).toEqual(['user', 'auditor']);
    await store.update(id, { disabled: true });
    expect((await cache.findById(id))?.disabled).toBe(true);
    const at = new Date(clock.now() + 5);
    await store.setPasswordHash(id, `${HASH}x`, { expected: HASH, change: { at, by: 'sid' } });
    expect((await cache.findById(id))?.passwordChangedAt).toEqual(at);
    await store.delete(id);
    expect(await cache.findById(id)).toBeNull();
    expect(reads).toBe(5);
  });

  it('empties on a reset and reads through while the feed is not live', async () => {
    await cache.findById(id);
    feed.resetAll();
    await cache.findById(id);
    expect(reads).toBe(2);
    feed.setLive(false);
    await cache.findById(id);
    await cache.findById(id);
    expect(reads).toBe(4);
    // Nothing read while not live was kept.
    feed.setLive(true);
    await cache.findById(id);
    expect(reads).toBe(5);
  });

  it('does not keep a read that an invalidation overtook', async () => {
    const pending = cache.findById(id);
    await store.update(id, { disabled: true });
    expect((await pending)?.disabled).toBe(false);
    expect((await cache.findById(id))?.disabled).toBe(true);
  });

  it('reads the store once for a herd of concurrent misses of one user; a miss after an invalidation does not join a read begun before it', async () => {
    const raw = createMemoryUserStore({ clock });
    const herdFeed = createMemoryUserChangeFeed();
    const users = publishUserChanges(raw, herdFeed);
    const user = await raw.create({ email: 'herd@example.com', passwordHash: HASH, roles: ['user'] });
    let storeReads = 0;
    let open = () => {};
    let gate = Promise.resolve();
    // Reads the record at once and answers when the gate opens: a late answer is a stale one.
    const slow: Pick<UserStore, 'findById'> = {
      async findById(userId) {
        storeReads += 1;
        const found = await raw.findById(userId);
        await gate;
        return found;
      },
    };
    const herdCache = createUserCache(slow, { feed: herdFeed, ttlMs: 60_000, clock });
    gate = new Promise((resolve) => (open = resolve));
    const herd = Array.from({ length: 16 }, () => herdCache.findById(user.id));
    expect(storeReads).toBe(1);
    open();
    expect((await Promise.all(herd)).every((found) => found?.id === user.id)).toBe(true);
    expect(storeReads).toBe(1);

    clock.advance(60_001);
    gate = new Promise((resolve) => (open = resolve));
    const begunBefore = herdCache.findById(user.id);
    await users.update(user.id, { disabled: true });
    const begunAfter = herdCache.findById(user.id);
    expect(storeReads).toBe(3);
    open();
    expect((await begunAfter)?.disabled).toBe(true);
    expect((await begunBefore)?.disabled).toBe(false);
    // Each joiner got its read's answer, and the last one is what stays.
    expect((await herdCache.findById(user.id))?.disabled).toBe(true);
    expect(storeReads).toBe(3);
  });

  it('does not let a caller join a read begun longer ago than the join window (a retry after its timeout reads again)', async () => {
    let storeReads = 0;
    let open = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const hanging: Pick<UserStore, 'findById'> = {
      async findById(userId) {
        storeReads += 1;
        await gate;
        return store.findById(userId);
      },
    };
    const local = createUserCache(hanging, { feed, ttlMs: 60_000, clock });
    const first = local.findById(id);
    clock.advance(USER_READ_JOIN_WINDOW_MS - 1);
    const herdMember = local.findById(id);
    expect(storeReads).toBe(1);
    // The refresh path gives up on a user read after at least 500 ms; its retry must not wait on the same read.
    clock.advance(2);
    const retry = local.findById(id);
    expect(storeReads).toBe(2);
    open();
    await Promise.all([first, herdMember, retry]);
  });
});
