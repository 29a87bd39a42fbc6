/**
 * A Map whose entries end at a time each carries (by the injected clock): an entry past it
 * is never returned, is dropped when looked up, and every entry is swept at most once a
 * minute, so memory follows the live entries. One synchronous step per call, as the memory
 * stores' atomicity needs.
 */
import type { Clock } from '../../clock.js';

const SWEEP_EVERY_MS = 60_000;

export interface ExpiringMap<V> {
  /** The live entry, or undefined. */
  get(key: string): V | undefined;
  set(key: string, value: V): void;
  delete(key: string): boolean;
  /** Every live entry. */
  values(): V[];
  /** The clock's now, as the last lookup saw it. */
  now(): number;
}

export function createExpiringMap<V>(clock: Clock, endsAt: (value: V) => number): ExpiringMap<V> {
  const entries = new Map<string, V>();
  let nextSweepAt = clock.now() + SWEEP_EVERY_MS;
  const now = () => {
    const time = clock.now();
    if (time >= nextSweepAt) {
      nextSweepAt = time + SWEEP_EVERY_MS;
      for (const [key, value] of entries) if (time >= endsAt(value)) entries.delete(key);
    }
    return time;
  };
  const get = (key: string) => {
    const value = entries.get(key);
    if (value !== undefined && now() >= endsAt(value)) {
      entries.delete(key);
      return undefined;
    }
    return value;
  };
  return {
    get,
    set: (key, value) => void entries.set(key, value),
    delete: (key) => get(key) !== undefined && entries.delete(key),
    values: () => [...entries.keys()].map(get).filter((value): value is V => value !== undefined),
    now,
  };
}
