/**
 * The kit's cache of verified tokens (packages/verifier/src/lru.ts), which replaced
 * lru-cache so that the package depends on jose alone: bounded, least recently used out
 * first, and each entry gone once its lifetime on the given clock has passed.
 */
import { describe, expect, it } from 'vitest';
import { LruCache } from '../../packages/verifier/src/lru.js';

describe('LruCache', () => {
  it('holds at most max entries, evicting the least recently used', () => {
    const clock = { ms: 0 };
    const cache = new LruCache<number>(3, () => clock.ms);
    cache.set('a', 1, 1000);
    cache.set('b', 2, 1000);
    cache.set('c', 3, 1000);
    expect(cache.get('a')).toBe(1); // a is now the most recently used; b the least
    cache.set('d', 4, 1000);
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
    // Setting an existing key replaces it without evicting anything.
    cache.set('c', 30, 1000);
    expect(cache.size).toBe(3);
    expect(cache.get('c')).toBe(30);
  });

  it('forgets an entry once its lifetime has passed on the clock', () => {
    const clock = { ms: 5000 };
    const cache = new LruCache<string>(10, () => clock.ms);
    cache.set('short', 'x', 100);
    cache.set('long', 'y', 10_000);
    clock.ms += 99;
    expect(cache.get('short')).toBe('x');
    clock.ms += 1;
    expect(cache.get('short')).toBeUndefined();
    expect(cache.size).toBe(1);
    expect(cache.get('long')).toBe('y');
  });

  it('visits every entry and deletes one', () => {
    const cache = new LruCache<number>(10, () => 0);
    for (const [key, value] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      cache.set(key, value, 10);
    const seen: string[] = [];
    cache.forEach((value, key) => seen.push(`${key}=${value}`));
    expect(seen).toEqual(['a=1', 'b=2', 'c=3']);
    expect(cache.delete('b')).toBe(true);
    expect(cache.delete('b')).toBe(false);
    expect(cache.get('b')).toBeUndefined();
  });

  it('refuses a bound that is not a positive whole number', () => {
    for (const max of [0, -1, 1.5, Number.NaN]) expect(() => new LruCache(max, () => 0)).toThrow(TypeError);
  });
});
