/**
 * The authority's published keys, as a resource server should hold them: discovered from
 * the RFC 8414 metadata unless configured, cached for the JWKS's `Cache-Control: max-age`,
 * revalidated with its ETag, and refetched on an unknown `kid` — but never more than once
 * per cooldown, whatever arrives, so a flood of junk tokens cannot become a flood of
 * requests to the authority. Concurrent refreshes share one request.
 */
import { ASYMMETRIC_ALGORITHMS, signatureKeyFromJwk, type SignatureKey } from './core.js';
import { freshnessMs, isObject, requestJson, type FetchLike } from './http.js';

export { ASYMMETRIC_ALGORITHMS };

/** RFC 9068 §2.1: RS256 is the one algorithm every authority must support. */
const DEFAULT_ALGORITHMS = ['RS256'];

/** When the JWKS response names no freshness: the authority's own default JWKS_MAX_AGE. */
const DEFAULT_JWKS_MAX_AGE_MS = 300_000;

const KTY_OF: Readonly<Record<string, string>> = {
  RS: 'RSA',
  PS: 'RSA',
  ES: 'EC',
  Ed: 'OKP',
};

export interface KeySourceOptions {
  readonly issuer: string;
  /** Skips discovery of the JWKS location. */
  readonly jwksUri: string | undefined;
  /** Skips discovery of the algorithms. Already checked to be asymmetric. */
  readonly algorithms: readonly string[] | undefined;
  readonly fetch: FetchLike;
  /**
   * A monotonic clock in ms, for cache ages and the cooldown: the wall clock can be set
   * back (an hour, by NTP or by hand), which would keep a stale key set "fresh" and block
   * refetches for as long.
   */
  readonly elapsed: () => number;
  readonly cooldownMs: number;
  readonly timeoutMs: number;
  /** How long past its freshness a key set may still be used while refetching it fails. */
  readonly maxStaleMs: number;
  readonly onError: (error: Error) => void;
  /** Told the kids of each new key set as it replaces the last (so caches can drop the others). */
  readonly onKeySet?: (kids: ReadonlySet<string>) => void;
}

export interface KeyLookup {
  /** The published key for the kid, bound to the alg; undefined when the set has none that fits. */
  readonly key: SignatureKey | undefined;
  /** The algorithms tokens may use: configured, or from the metadata. */
  readonly algorithms: ReadonlySet<string>;
}

export interface KeySource {
  /**
   * The key for `kid` usable with `alg`, looked up in the current set; the set is loaded,
   * or refreshed once stale, first, and refetched (if the cooldown allows) when it lacks the
   * kid. Synchronous when the set is fresh and holds the kid, which is nearly every call.
   * Throws (or rejects with) `KeySourceUnavailable` when no usable key set could be loaded.
   */
  key(kid: string, alg: string): KeyLookup | Promise<KeyLookup>;
  /** The same, only when it needs no loading or refetching; otherwise undefined. Never throws. */
  peek(kid: string, alg: string): KeyLookup | undefined;
}

/** Nothing could be loaded: the verifier cannot decide either way. */
export class KeySourceUnavailable extends Error {
  override readonly name = 'KeySourceUnavailable';
}

interface Metadata {
  readonly jwksUri: string;
  readonly algorithms: ReadonlySet<string>;
  readonly etag: string | undefined;
  freshUntil: number;
}

interface KeySet {
  readonly byKid: ReadonlyMap<string, readonly Record<string, unknown>[]>;
  /** Imported keys by `kid alg`, built lazily: a new set starts with an empty cache. */
  readonly imported: Map<string, SignatureKey | undefined>;
  readonly etag: string | undefined;
  freshUntil: number;
}

export function createKeySource(options: KeySourceOptions): KeySource {
  const { issuer, fetch, elapsed, cooldownMs, timeoutMs, maxStaleMs, onError } = options;
  const discovering = options.jwksUri === undefined || options.algorithms === undefined;
  const configuredAlgorithms = options.algorithms === undefined ? undefined : new Set(options.algorithms);
  let metadata: Metadata | undefined;
  let keySet: KeySet | undefined;
  let lastAttempt = Number.NEGATIVE_INFINITY;
  let lastError: Error | undefined;
  let inflight: Promise<void> | undefined;

  const coolingDown = () => elapsed() - lastAttempt < cooldownMs;

  /** One round trip for both documents; every caller during it waits for the same one. */
  function refresh(): Promise<void> {
    if (inflight === undefined) {
      lastAttempt = elapsed();
      inflight = (async () => {
        try {
          if (discovering) await refreshMetadata();
          await refreshKeySet();
          lastError = undefined;
        } catch (err) {
          lastError = err instanceof Error ? err : new Error(String(err));
          onError(lastError);
        }
      })().finally(() => {
        inflight = undefined;
      });
    }
    return inflight;
  }

  /** Waits for a refresh under way, or starts one if the cooldown allows; otherwise returns at once. */
  async function refreshIfAllowed(): Promise<void> {
    if (inflight !== undefined) return inflight;
    if (!coolingDown()) await refresh();
  }

  async function refreshMetadata(): Promise<void> {
    const url = metadataUrl(issuer);
    try {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (metadata?.etag !== undefined) headers['if-none-match'] = metadata.etag;
      const response = await requestJson(fetch, url, { headers }, timeoutMs);
      if (response.status === 304 && metadata !== undefined) {
        metadata.freshUntil = elapsed() + freshnessMs(response.headers, DEFAULT_JWKS_MAX_AGE_MS);
        return;
      }
      if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
      metadata = {
        ...parseMetadata(response.body, issuer, url),
        etag: response.headers.get('etag') ?? undefined,
        freshUntil: elapsed() + freshnessMs(response.headers, DEFAULT_JWKS_MAX_AGE_MS),
      };
    } catch (err) {
      // A metadata document we already hold stays good: the JWKS request can still go ahead.
      if (metadata === undefined) throw err;
      onError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async function refreshKeySet(): Promise<void> {
    const url = options.jwksUri ?? metadata!.jwksUri;
    const headers: Record<string, string> = { accept: 'application/jwk-set+json, application/json' };
    if (keySet?.etag !== undefined) headers['if-none-match'] = keySet.etag;
    const response = await requestJson(fetch, url, { headers }, timeoutMs);
    const freshUntil = elapsed() + freshnessMs(response.headers, DEFAULT_JWKS_MAX_AGE_MS);
    if (response.status === 304 && keySet !== undefined) {
      keySet.freshUntil = freshUntil;
      return;
    }
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
    keySet = { byKid: parseKeySet(response.body, url), imported: new Map(), etag: response.headers.get('etag') ?? undefined, freshUntil };
    options.onKeySet?.(new Set(keySet.byKid.keys()));
  }

  /** A usable key set: loaded now if there is none, refreshed (blocking) once it is stale. */
  async function current(): Promise<KeySet> {
    if (keySet === undefined || elapsed() >= keySet.freshUntil) await refreshIfAllowed();
    // A failed refresh of a stale set keeps the set for a while (an outage of the authority
    // need not stop every resource server at once), but not for ever: a key removed in an
    // emergency would otherwise stay trusted for as long as anyone can keep us from
    // refetching.
    if (keySet === undefined || elapsed() >= keySet.freshUntil + maxStaleMs) {
      const what = keySet === undefined ? 'could not be loaded' : `are stale by more than ${Math.round(maxStaleMs / 1000)} s and could not be refreshed`;
      throw new KeySourceUnavailable(`the authority's keys ${what}${lastError ? `: ${lastError.message}` : ''}`, { cause: lastError });
    }
    return keySet;
  }

  /** `kid alg` in `set`; only kids the set holds are cached, so junk kids cannot grow the cache. */
  function lookup(set: KeySet, kid: string, alg: string): KeyLookup {
    const algorithms = configuredAlgorithms ?? metadata!.algorithms;
    const candidates = set.byKid.get(kid);
    if (candidates === undefined) return { key: undefined, algorithms };
    const cacheKey = `${kid} ${alg}`;
    if (!set.imported.has(cacheKey)) set.imported.set(cacheKey, importFor(candidates, alg));
    return { key: set.imported.get(cacheKey), algorithms };
  }

  async function slowKey(kid: string, alg: string): Promise<KeyLookup> {
    let set = await current();
    if (!set.byKid.has(kid)) {
      // A key published after our copy was fetched (or a forged kid): one refetch per cooldown.
      await refreshIfAllowed();
      set = keySet ?? set;
    }
    return lookup(set, kid, alg);
  }

  function peek(kid: string, alg: string): KeyLookup | undefined {
    return keySet !== undefined && elapsed() < keySet.freshUntil && keySet.byKid.has(kid) ? lookup(keySet, kid, alg) : undefined;
  }

  return {
    // The hot path: no promise when the set is fresh and holds the kid.
    key: (kid, alg) => peek(kid, alg) ?? slowKey(kid, alg),
    peek,
  };
}

/** RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path. */
export function metadataUrl(issuer: string): string {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

function parseMetadata(body: unknown, issuer: string, url: string): Pick<Metadata, 'jwksUri' | 'algorithms'> {
  if (!isObject(body)) throw new Error(`${url} is not a JSON object`);
  // RFC 8414 §3.3: a document naming another issuer must not be used (mix-up defence).
  if (body.issuer !== issuer) throw new Error(`${url} names issuer ${JSON.stringify(body.issuer)}, not ${issuer}`);
  const jwksUri = body.jwks_uri;
  if (typeof jwksUri !== 'string' || !/^https?:$/.test(safeProtocol(jwksUri))) throw new Error(`${url} has no usable jwks_uri`);
  // The member the authority publishes for the algs of its JWT access tokens (see its metadata route).
  const listed = body.access_token_signing_alg_values_supported;
  let algorithms: string[];
  if (listed === undefined) {
    algorithms = DEFAULT_ALGORITHMS;
  } else {
    if (!Array.isArray(listed)) throw new Error(`${url}: access_token_signing_alg_values_supported is not an array`);
    algorithms = listed.filter((alg): alg is string => typeof alg === 'string' && ASYMMETRIC_ALGORITHMS.has(alg));
    if (algorithms.length === 0) throw new Error(`${url} lists no asymmetric signing algorithm (only ${JSON.stringify(listed)})`);
  }
  return { jwksUri, algorithms: new Set(algorithms) };
}

function safeProtocol(url: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    return '';
  }
}

function parseKeySet(body: unknown, url: string): Map<string, Record<string, unknown>[]> {
  if (!isObject(body) || !Array.isArray(body.keys)) throw new Error(`${url} is not a JWK Set (RFC 7517 §5)`);
  const byKid = new Map<string, Record<string, unknown>[]>();
  for (const jwk of body.keys as unknown[]) {
    // Keys we could never use are dropped here: no kid, not for signatures, or symmetric.
    if (!isObject(jwk) || typeof jwk.kid !== 'string' || typeof jwk.kty !== 'string' || jwk.kty === 'oct') continue;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) continue;
    byKid.set(jwk.kid, [...(byKid.get(jwk.kid) ?? []), jwk]);
  }
  return byKid;
}

/**
 * The key among those sharing the kid that fits `alg`: the JWK's own `alg`, when it has
 * one, must be exactly the token's (RFC 7517 §4.4), so an RS256 key never checks a PS256
 * signature; and the key type (and curve, and RSA size) must suit the alg.
 */
function importFor(candidates: readonly Record<string, unknown>[], alg: string): SignatureKey | undefined {
  const kty = KTY_OF[alg.slice(0, 2)];
  for (const jwk of candidates) {
    if (jwk.alg !== undefined && jwk.alg !== alg) continue;
    if (jwk.kty !== kty) continue;
    // Not usable for this alg (e.g. an RSA key under 2048 bits): try the next.
    const key = signatureKeyFromJwk(alg, jwk);
    if (key !== undefined) return key;
  }
  return undefined;
}
