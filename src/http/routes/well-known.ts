/**
 * The two documents resource servers and clients discover us by. Both are serialised once
 * per key ring (the ring changes only on rotation), never per request, and carry a strong
 * ETag so that caches revalidate with a 304. Their headers are fixed too, so a response is
 * one `writeHead` of a precomputed header list and one write of the bytes; `publicDocuments`
 * answers GET and HEAD for them ahead of the rest of the middleware chain (they need no
 * body, no client, no CORS decision).
 */
import { createHash } from 'node:crypto';
import fresh from 'fresh';
import type { Context, Middleware } from 'koa';
import type { KeyRing } from '../../keys/key-ring.js';
import type { KeyRingSource } from '../../keys/source.js';
import { USER_CLAIMS } from '../../oauth/user-claims.js';
import { ACR_PASSWORD } from '../../tokens/id-token.js';

/** GET /.well-known/jwks.json (RFC 7517 §5): the published keys, public members only. */
export function jwksRoute(keys: Pick<KeyRingSource, 'current'>, maxAgeSec: number, fixedHeaders: FixedHeaders = []): Middleware {
  const head = headList(fixedHeaders, `public, max-age=${maxAgeSec}`, 'application/jwk-set+json');
  return function jwks(ctx) {
    const { body, etag } = keys.current().jwks;
    serve(ctx, body, etag, head);
  };
}

/** Headers every response of a document carries (security and CORS headers), set once. */
export type FixedHeaders = ReadonlyArray<readonly [string, string]>;

/**
 * Answers GET and HEAD for the given paths with their routes before the rest of the chain;
 * anything else (another path, OPTIONS, a wrong method) goes on to the router, where the
 * same routes are registered.
 */
export function publicDocuments(routes: ReadonlyMap<string, Middleware>): Middleware {
  return function servePublicDocument(ctx, next) {
    const route = ctx.method === 'GET' || ctx.method === 'HEAD' ? routes.get(ctx.path) : undefined;
    if (!route) return next();
    // Its own path is the route (for the request log): these paths are fixed, never a value.
    ctx._matchedRoute = ctx.path;
    return route(ctx, next);
  };
}

export interface MetadataDeps {
  readonly issuer: string;
  readonly keys: Pick<KeyRingSource, 'current'>;
  /** `grant_types_supported`: the grant registry's list. */
  readonly grantTypes: readonly string[];
  /** `scopes_supported`; omitted when empty. */
  readonly scopes: readonly string[];
  /** `Cache-Control: max-age` of the document; default 300 s. */
  readonly maxAgeSec?: number;
  /** Default `client_secret_basic`, `client_secret_post`. */
  readonly revocationAuthMethods?: readonly string[];
  /** Default `client_secret_basic`, `client_secret_post`. */
  readonly introspectionAuthMethods?: readonly string[];
  /** Headers every response carries (security and CORS headers). */
  readonly fixedHeaders?: FixedHeaders;
  /** REQUIRE_PAR: every client must push its authorization requests (RFC 9126 §5). */
  readonly requirePar?: boolean;
}

/**
 * GET /.well-known/oauth-authorization-server (RFC 8414 §3), or with
 * `openidConfigurationDocument` GET /.well-known/openid-configuration (OIDC Discovery §4).
 */
export function metadataRoute(deps: MetadataDeps, document: (deps: MetadataDeps, ring: KeyRing) => Record<string, unknown> = metadataDocument): Middleware {
  const head = headList(deps.fixedHeaders ?? [], `public, max-age=${deps.maxAgeSec ?? 300}`, 'application/json; charset=utf-8');
  let cached: { ring: KeyRing; body: Buffer; etag: string } | undefined;
  return function metadata(ctx) {
    const ring = deps.keys.current();
    if (cached?.ring !== ring) {
      const body = Buffer.from(JSON.stringify(document(deps, ring)));
      cached = { ring, body, etag: strongEtag(body) };
    }
    serve(ctx, cached.body, cached.etag, head);
  };
}

/** The RFC 8414 §2 document. Only members that are true of this server are present. */
export function metadataDocument(deps: MetadataDeps, ring: KeyRing): Record<string, unknown> {
  const clientAuth = ['client_secret_basic', 'client_secret_post'];
  return {
    issuer: deps.issuer,
    authorization_endpoint: `${deps.issuer}/oauth/authorize`,
    token_endpoint: `${deps.issuer}/oauth/token`,
    jwks_uri: `${deps.issuer}/.well-known/jwks.json`,
    ...(deps.scopes.length > 0 && { scopes_supported: [...deps.scopes] }),
    // The code flow only (RFC 9700 §2.1.2: no implicit), with PKCE S256 (RFC 7636 §6.2),
    // iss in the response (RFC 9207 §3) and pushed requests (RFC 9126 §5).
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    pushed_authorization_request_endpoint: `${deps.issuer}/oauth/par`,
    ...(deps.requirePar && { require_pushed_authorization_requests: true }),
    grant_types_supported: [...deps.grantTypes],
    token_endpoint_auth_methods_supported: [...clientAuth, 'none'],
    revocation_endpoint: `${deps.issuer}/oauth/revoke`,
    revocation_endpoint_auth_methods_supported: [...(deps.revocationAuthMethods ?? clientAuth)],
    introspection_endpoint: `${deps.issuer}/oauth/introspect`,
    introspection_endpoint_auth_methods_supported: [...(deps.introspectionAuthMethods ?? clientAuth)],
    // Not registered by RFC 8414 or RFC 9068; the conventional name for the algs of JWT access
    // tokens. The active key's alg comes first, then those of keys still published.
    access_token_signing_alg_values_supported: [...ring.algorithms],
  };
}

/** OIDC Discovery §3: the RFC 8414 document (one source, so the two never disagree) and what OpenID Connect adds. */
export function openidConfigurationDocument(deps: MetadataDeps, ring: KeyRing): Record<string, unknown> {
  const oauth = metadataDocument(deps, ring);
  return {
    ...oauth,
    // OIDC Discovery §3: a provider supports the openid scope, so it is always listed.
    scopes_supported: [...new Set(['openid', ...deps.scopes])],
    userinfo_endpoint: `${deps.issuer}/oauth/userinfo`,
    end_session_endpoint: `${deps.issuer}/oauth/logout`,
    // ID tokens are signed by the active key, in the alg each client registered (tokens/id-token.ts).
    id_token_signing_alg_values_supported: [...ring.idTokenAlgs],
    subject_types_supported: ['public'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'at_hash', 'sid', 'azp', ...USER_CLAIMS],
    acr_values_supported: [ACR_PASSWORD],
    prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
    ui_locales_supported: ['en'],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    // A request_uri is only ever one this server issued at its PAR endpoint.
    request_uri_parameter_supported: false,
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    frontchannel_logout_supported: false,
  };
}

function headList(fixed: FixedHeaders, cacheControl: string, contentType: string): readonly string[] {
  return [...fixed.flat(), 'Cache-Control', cacheControl, 'Content-Type', contentType];
}

/**
 * Writes the response itself (Koa steps aside): the fixed headers, the ETag and the request
 * id in one `writeHead`, then the bytes. A 304 (RFC 9110 §13.1.2, via `fresh`: If-None-Match
 * with weak comparison, `*`, and `Cache-Control: no-cache` forcing a full answer) has no
 * body; HEAD gets the headers of the 200.
 */
function serve(ctx: Context, body: Buffer, etag: string, head: readonly string[]): void {
  ctx.respond = false;
  const headers = [...head, 'ETag', etag];
  if (ctx.state.requestId) headers.push('X-Request-Id', ctx.state.requestId);
  if (fresh(ctx.req.headers, { etag })) {
    ctx.res.writeHead(304, headers);
    ctx.res.end();
    return;
  }
  headers.push('Content-Length', String(body.length));
  ctx.res.writeHead(200, headers);
  ctx.res.end(ctx.method === 'HEAD' ? undefined : body);
}

function strongEtag(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url')}"`;
}
