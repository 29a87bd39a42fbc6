/**
 * Security headers (helmet) and CORS (@koa/cors), both well-kept libraries rather than
 * hand-written header values. The API returns only JSON, so its CSP forbids everything.
 */
import cors from '@koa/cors';
import helmet from 'helmet';
import type { Middleware } from 'koa';

/** Fetched by resource servers and client libraries from anywhere, never with credentials. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/.well-known/jwks.json', '/.well-known/oauth-authorization-server']);

/**
 * The headers helmet decides. Nothing in them varies per request (no CSP nonce), so they
 * are computed once, by running helmet against a recording response.
 */
export function securityHeaderEntries({ https }: { https: boolean }): ReadonlyArray<readonly [string, string]> {
  const policy = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: https ? { maxAge: 31536000, includeSubDomains: true } : false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
    xPoweredBy: false,
    // The headers below protect HTML documents (windows, downloads, legacy XSS filters,
    // Flash/Acrobat policy files); every response here is JSON, so they would only add
    // bytes and per-response work (OWASP REST Security Cheat Sheet, "Security Headers").
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
  const headers = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: string) => void headers.set(name, String(value)),
    removeHeader: (name: string) => void headers.delete(name),
  };
  let failure: unknown;
  policy({} as never, recorder as never, (err?: unknown) => {
    failure = err;
  });
  if (failure) throw failure;
  return [...headers];
}

/**
 * helmet's headers, copied onto every response: the same headers as running helmet each
 * time, a fraction of the work on the hot paths.
 */
export function securityHeaders({ https }: { https: boolean }): Middleware {
  const entries = securityHeaderEntries({ https });
  return async function setSecurityHeaders(ctx, next) {
    for (const [name, value] of entries) ctx.res.setHeader(name, value);
    await next();
  };
}

/** Response headers a cross-origin caller may read. */
const EXPOSED_HEADERS = ['WWW-Authenticate', 'Retry-After', 'X-Request-Id'];

/**
 * The headers of a public document (JWKS, metadata): helmet's, with any origin allowed to
 * read and embed it, never with credentials. No `Vary: Origin` (which @koa/cors adds to
 * everything else): the answer is the same `*` for every origin, so shared caches (a CDN in
 * front of the JWKS) may keep one copy instead of one per Origin.
 */
export function publicDocumentHeaders({ https }: { https: boolean }): ReadonlyArray<readonly [string, string]> {
  const headers = new Map(securityHeaderEntries({ https }));
  headers.set('Cross-Origin-Resource-Policy', 'cross-origin');
  headers.set('Access-Control-Allow-Origin', '*');
  headers.set('Access-Control-Expose-Headers', EXPOSED_HEADERS.join(','));
  return [...headers];
}

/**
 * CORS: exact origins from CORS_ORIGINS may call the API with credentials (cookies);
 * other origins get no CORS headers at all, so browsers refuse to hand them the response.
 * The JWKS and metadata are public: any origin, no credentials.
 */
export function corsPolicy({ origins }: { origins: readonly string[] }): Middleware {
  const allowed = new Set(origins);
  const isPublic = (path: string) => PUBLIC_PATHS.has(path);
  const handle = cors({
    origin: (ctx) => {
      if (isPublic(ctx.path)) return '*';
      const origin = ctx.get('Origin');
      return allowed.has(origin) ? origin : '';
    },
    credentials: (ctx) => !isPublic(ctx.path) && allowed.has(ctx.get('Origin')),
    allowMethods: ['GET', 'POST', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposeHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
  return async function applyCors(ctx, next) {
    if (isPublic(ctx.path)) ctx.set('Cross-Origin-Resource-Policy', 'cross-origin');
    return handle(ctx, next);
  };
}
