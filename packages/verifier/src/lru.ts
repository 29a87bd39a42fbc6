/**
 * A bounded map with least-recently-used eviction and a lifetime per entry: the kit's cache
 * of verified tokens, written here so that the package depends on `jose` alone. A Map
 * iterates in insertion order, so moving an entry to the end on every hit keeps the least
 * recently used one first, where eviction takes it. An expired entry is dropped when it is
 * next read, or evicted like any other.
 */
export class LruCache<V> {
  readonly #entries = new Map<string, { readonly value: V; readonly expires: number }>();
  readonly #max: number;
  readonly #clock: () => number;

  /** `max` entries at most (a positive whole number); lifetimes are measured on `clock` (ms, monotonic). */
  constructor(max: number, clock: () => number) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError('LruCache: max must be a positive whole number');
    this.#max = max;
    this.#clock = clock;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, unless absent or expired; a hit makes it the most recently used. */
  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (entry.expires <= this.#clock()) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Remembers `value` for `ttlMs`, evicting the least recently used entries beyond `max`. */
  set(key: string, value: V, ttlMs: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: this.#clock() + ttlMs });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#max) break;
      this.#entries.delete(oldest);
    }
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  /** Every entry still held (expired ones included until they are read or evicted). */
  forEach(visit: (value: V, key: string) => void): void {
    for (const [key, entry] of this.#entries) visit(entry.value, key);
  }
}
