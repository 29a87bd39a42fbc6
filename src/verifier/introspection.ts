/**
 * Optional second opinion for resource servers that must see revocations at once: after a
 * token passed local verification, ask the authority's RFC 7662 endpoint whether it is
 * still active. Answers are cached briefly per `jti` (never past the token's `exp`), and
 * an unreachable endpoint fails closed: a revoked token must not pass because the
 * authority is down.
 */
import { isObject, requestJson, type FetchLike } from './http.js';

export interface IntrospectionOptions {
  /** The authority's `introspection_endpoint`. */
  readonly url: string;
  /** A confidential client the authority lets introspect (RFC 7662 §2.1 requires authentication). */
  readonly clientId: string;
  readonly clientSecret: string;
  /**
   * How long an "active" answer is trusted, in ms; default 5000. A revocation takes effect
   * here within this time. "Inactive" answers are kept until the token expires anyway.
   */
  readonly cacheMs?: number;
  /** Bound on cached answers; default 10 000. */
  readonly maxEntries?: number;
}

export const DEFAULT_INTROSPECTION_CACHE_MS = 5000;

interface Entry {
  readonly active: boolean;
  readonly until: number;
}

export interface Introspector {
  /** `active` of the token (RFC 7662 §2.2). Rejects when the endpoint gives no usable answer. */
  isActive(token: string, jti: string, expMs: number): Promise<boolean>;
}

export function createIntrospector(options: IntrospectionOptions, deps: { fetch: FetchLike; now: () => number; timeoutMs: number }): Introspector {
  const { url } = options;
  const cacheMs = options.cacheMs ?? DEFAULT_INTROSPECTION_CACHE_MS;
  const maxEntries = options.maxEntries ?? 10_000;
  const { fetch, now, timeoutMs } = deps;
  // RFC 6749 §2.3.1: both halves are form-urlencoded before Basic encoding.
  const authorization = `Basic ${Buffer.from(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`).toString('base64')}`;
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<boolean>>();

  function remember(jti: string, entry: Entry): void {
    cache.delete(jti);
    cache.set(jti, entry);
    if (cache.size <= maxEntries) return;
    const at = now();
    for (const [key, value] of cache) if (value.until <= at) cache.delete(key);
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
      if (cached !== undefined && now() < cached.until) return cached.active;
      let pending = inflight.get(jti);
      if (pending === undefined) {
        pending = ask(token).then((active) => {
          // A revocation is final; an "active" answer is good only for cacheMs.
          remember(jti, { active, until: active ? Math.min(now() + cacheMs, expMs) : expMs });
          return active;
        });
        inflight.set(jti, pending);
        void pending.then(
          () => inflight.delete(jti),
          () => inflight.delete(jti),
        );
      }
      return pending;
    },
  };
}
