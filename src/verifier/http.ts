/** The verifier's outbound HTTP: an injectable `fetch`, a deadline on every request, bounded bodies. */

/** The slice of the WHATWG `fetch` the verifier uses; `globalThis.fetch` by default. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** No metadata, JWKS or introspection response we expect comes near this. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface JsonResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Undefined for 304. */
  readonly body: unknown;
}

/**
 * One request with a deadline. Rejects (with a message naming the URL) on network errors,
 * timeouts, bodies over 1 MiB, and non-JSON bodies on 200; other statuses resolve so the
 * caller can decide.
 */
export async function requestJson(fetch: FetchLike, url: string, init: RequestInit, timeoutMs: number): Promise<JsonResponse> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(`${init.method ?? 'GET'} ${url} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (response.status !== 200) {
    // Drain and discard, so the connection can be reused.
    await response.arrayBuffer().catch(() => undefined);
    return { status: response.status, headers: response.headers, body: undefined };
  }
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`${url} answered with a body over ${MAX_BODY_BYTES} bytes`);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    throw new Error(`reading ${url} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (text.length > MAX_BODY_BYTES) throw new Error(`${url} answered with a body over ${MAX_BODY_BYTES} bytes`);
  try {
    return { status: 200, headers: response.headers, body: JSON.parse(text) as unknown };
  } catch {
    throw new Error(`${url} did not answer with JSON`);
  }
}

/**
 * Freshness lifetime in ms from `Cache-Control` (RFC 9111 §5.2.2): `max-age`, or 0 for
 * `no-store`/`no-cache`; `fallbackMs` when the header says neither. Capped at a day so a
 * mistaken header cannot pin a key set forever.
 */
export function freshnessMs(cacheControl: string | null, fallbackMs: number): number {
  const DAY = 86_400_000;
  if (cacheControl === null) return fallbackMs;
  const directives = cacheControl.toLowerCase().split(',').map((part) => part.trim());
  if (directives.some((d) => d === 'no-store' || d === 'no-cache')) return 0;
  for (const directive of directives) {
    const match = /^max-age\s*=\s*"?(\d+)"?$/.exec(directive);
    if (match) return Math.min(Number(match[1]) * 1000, DAY);
  }
  return fallbackMs;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
