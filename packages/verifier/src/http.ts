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
 * timeouts, redirects, bodies over 1 MiB, and non-JSON bodies on 200; other statuses
 * resolve so the caller can decide.
 *
 * Redirects are never followed: the keys we trust must come from the URL we were given,
 * and an introspection request must not carry the token and our credentials elsewhere
 * (a 307 re-sends the POST). A 3xx is a failed request, handled like any other.
 */
export async function requestJson(fetch: FetchLike, url: string, init: RequestInit, timeoutMs: number): Promise<JsonResponse> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(`${init.method ?? 'GET'} ${url} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // `opaqueredirect` (status 0) is what a browser-like fetch gives for a manual redirect.
  if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400 && response.status !== 304)) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`${url} answered ${response.status} (a redirect, which is not followed)`);
  }
  if (response.status !== 200) {
    // Discarded unread: an error body may be of any size.
    await response.body?.cancel().catch(() => undefined);
    return { status: response.status, headers: response.headers, body: undefined };
  }
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`${url} answered with a body over ${MAX_BODY_BYTES} bytes`);
  }
  // Counted as it arrives: a chunked body declares no length, and must not be read whole first.
  const decoder = new TextDecoder();
  let text = '';
  let size = 0;
  try {
    for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > MAX_BODY_BYTES) {
        await response.body?.cancel().catch(() => undefined);
        throw new BodyTooLarge(`${url} answered with a body over ${MAX_BODY_BYTES} bytes`);
      }
      text += decoder.decode(chunk, { stream: true });
    }
    text += decoder.decode();
  } catch (err) {
    if (err instanceof BodyTooLarge) throw err;
    throw new Error(`reading ${url} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    return { status: 200, headers: response.headers, body: JSON.parse(text) as unknown };
  } catch {
    throw new Error(`${url} did not answer with JSON`);
  }
}

class BodyTooLarge extends Error {}

/**
 * Freshness lifetime in ms left of a response (RFC 9111 §4.2): `max-age` from
 * `Cache-Control`, or 0 for `no-store`/`no-cache`, `fallbackMs` when it says neither, less
 * the `Age` a shared cache on the way reports (it already kept the response that long).
 * Capped at a day so a mistaken header cannot pin a key set forever.
 */
export function freshnessMs(headers: Headers, fallbackMs: number): number {
  const age = /^\d+$/.test(headers.get('age') ?? '') ? Number(headers.get('age')) * 1000 : 0;
  return Math.max(0, lifetimeMs(headers.get('cache-control'), fallbackMs) - age);
}

function lifetimeMs(cacheControl: string | null, fallbackMs: number): number {
  const DAY = 86_400_000;
  if (cacheControl === null) return fallbackMs;
  const directives = cacheControl
    .toLowerCase()
    .split(',')
    .map((part) => part.trim());
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
