/**
 * Optional second opinion for resource servers that must see revocations at once: after a
 * token passed local verification, ask the authority's RFC 7662 endpoint whether it is
 * still active. Answers are cached briefly per `jti` (never past the token's `exp`), and
 * an unreachable endpoint fails closed: a revoked token must not pass because the
 * authority is down.
 *
 * After a failed request the endpoint is left alone for a while (1 s, doubling on each
 * consecutive failure up to 30 s): tokens that need a request get 503 at once instead of
 * each waiting out the timeout, and every resource server does not hammer an authority
 * that is already in trouble. Then one request goes out as a probe; while it is under way,
 * other tokens keep failing fast (waiting for it would stall them for up to the timeout
 * again, and they would still need a request of their own afterwards). Cached answers are
 * served throughout.
 */
import { isObject, requestJson, type FetchLike } from './http.js';

export interface IntrospectionOptions {
  /** The authority's `introspection_endpoint`. */
  readonly url: string;
  /** A confidential client the authority lets introspect (RFC 7662 §2.1 requires authentication). */
  readonly clientId: string;
  readonly clientSecret: string;
  /**
   * How long an "active" answer is trusted, in ms; default 5000, at most 300 000 (5 min).
   * A revocation takes effect here within this time. "Inactive" answers are kept until the
   * token expires anyway.
   */
  readonly cacheMs?: number;
  /** Bound on cached answers, a whole number; default 10 000. */
  readonly maxEntries?: number;
}

export const DEFAULT_INTROSPECTION_CACHE_MS = 5000;

/**
 * Introspection is there to see revocations soon; an "active" answer trusted for longer
 * than the JWKS max-age (5 min by default, how long a key removed in an emergency may still
 * verify) would make it slower than offline verification at the one thing it adds, and an
 * unbounded one (Infinity) would never see a revocation at all.
 */
export const MAX_INTROSPECTION_CACHE_MS = 300_000;

/** The backoff after a first failure, ms; doubled on each consecutive failure up to the cap. */
export const INTROSPECTION_BACKOFF_MS = 1000;
/** Short enough that an authority back on its feet is asked again soon. */
export const MAX_INTROSPECTION_BACKOFF_MS = 30_000;

interface Entry {
  readonly active: boolean;
  /** The token's `exp`, ms since the epoch (wall clock). */
  readonly expMs: number;
  /** Monotonic (`elapsed`): an "active" answer is good for cacheMs of it; an "inactive" one for ever. */
  readonly freshUntil: number;
}

export interface Introspector {
  /** `active` of the token (RFC 7662 §2.2). Rejects when the endpoint gives no usable answer. */
  isActive(token: string, jti: string, expMs: number): Promise<boolean>;
}

export function createIntrospector(
  options: IntrospectionOptions,
  deps: { fetch: FetchLike; now: () => number; elapsed: () => number; timeoutMs: number },
): Introspector {
  const { url } = options;
  const cacheMs = options.cacheMs ?? DEFAULT_INTROSPECTION_CACHE_MS;
  const maxEntries = options.maxEntries ?? 10_000;
  const { fetch, now, elapsed, timeoutMs } = deps;
  // RFC 6749 §2.3.1: both halves are form-urlencoded before Basic encoding.
  const authorization = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`;
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<boolean>>();
  // Backoff, on the monotonic clock like the cache.
  let failures = 0;
  /** When the backoff after the last failure ends; read only while `failures > 0`. */
  let retryAt = 0;
  let lastFailure = '';
  let probing = false;

  // Cache age on the monotonic clock: set back, the wall clock would keep "active" until exp.
  const usable = (entry: Entry) => now() < entry.expMs && elapsed() < entry.freshUntil;

  function remember(jti: string, entry: Entry): void {
    cache.delete(jti);
    cache.set(jti, entry);
    if (cache.size <= maxEntries) return;
    for (const [key, value] of cache) if (!usable(value)) cache.delete(key);
    // Still full: drop the oldest answers (Map iterates in insertion order).
    for (const key of cache.keys()) {
      if (cache.size <= maxEntries) break;
      cache.delete(key);
    }
  }

  async function ask(token: string): Promise<boolean> {
    const body = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
    const response = await requestJson(
      fetch,
      url,
      { method: 'POST', headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body },
      timeoutMs,
    );
    if (response.status !== 200) throw new Error(`introspection at ${url} answered ${response.status}`);
    if (!isObject(response.body) || typeof response.body.active !== 'boolean') throw new Error(`introspection at ${url} gave no boolean "active"`);
    return response.body.active;
  }

  return {
    async isActive(token, jti, expMs) {
      const cached = cache.get(jti);
      if (cached !== undefined && usable(cached)) return cached.active;
      let pending = inflight.get(jti);
      if (pending !== undefined) return pending;
      if (failures > 0) {
        if (probing) throw new Error(`introspection at ${url} is being retried after: ${lastFailure}`);
        const waitMs = retryAt - elapsed();
        if (waitMs > 0) throw new Error(`introspection at ${url} backs off ${Math.ceil(waitMs)} ms more after: ${lastFailure}`);
        probing = true;
      }
      const isProbe = probing;
      // Requests already under way when a failure starts the backoff fail with it: one outage, one failure.
      const failuresBefore = failures;
      pending = ask(token).then(
        (active) => {
          failures = 0;
          // A revocation is final; an "active" answer is good only for cacheMs.
          remember(jti, { active, expMs, freshUntil: active ? elapsed() + cacheMs : Number.POSITIVE_INFINITY });
          return active;
        },
        (err: unknown) => {
          if (failures === failuresBefore) {
            failures++;
            retryAt = elapsed() + Math.min(INTROSPECTION_BACKOFF_MS * 2 ** (failures - 1), MAX_INTROSPECTION_BACKOFF_MS);
            lastFailure = err instanceof Error ? err.message : String(err);
          }
          throw err;
        },
      );
      inflight.set(jti, pending);
      const settled = (): void => {
        inflight.delete(jti);
        if (isProbe) probing = false;
      };
      void pending.then(settled, settled);
      return pending;
    },
  };
}
