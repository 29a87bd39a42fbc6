/**
 * The response headers of every hosted page. The CSP is the issue's
 * `default-src 'none'; style-src 'self'; form-action 'self' <redirect origin>; frame-ancestors 'none'`
 * plus `img-src 'self'` (the operator's logo) and `base-uri 'none'` (not covered by
 * default-src). `form-action` lists the validated redirect URI's origin because browsers
 * apply it to the redirect that follows a form post too.
 */

/**
 * The CSP header value. Each `formActionOrigins` entry must be a bare origin
 * (`https://app.example`, `http://127.0.0.1:5173`); anything else throws TypeError, so no
 * value can smuggle another directive into the header.
 */
export function contentSecurityPolicy(formActionOrigins: readonly string[] = []): string {
  const origins = [...new Set(formActionOrigins.map(assertOrigin))];
  return [
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self'",
    `form-action ${["'self'", ...origins].join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** Every header a hosted page is sent with (the status is the caller's: 200, 400, 429...). */
export function pageHeaders(formActionOrigins: readonly string[] = []): Readonly<Record<string, string>> {
  return Object.freeze({
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': contentSecurityPolicy(formActionOrigins),
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  });
}

function assertOrigin(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== value) {
    throw new TypeError(`not an http(s) origin: ${JSON.stringify(value)}`);
  }
  return value;
}
