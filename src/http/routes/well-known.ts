/**
 * The two documents resource servers and clients discover us by. Both are serialised once
 * per key ring (the ring changes only on rotation), never per request, and carry a strong
 * ETag so that caches revalidate with a 304.
 */
import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import type { KeyRing } from '../../keys/key-ring.js';
import type { KeyRingSource } from '../../keys/source.js';

/** GET /.well-known/jwks.json (RFC 7517 §5): the published keys, public members only. */
export function jwksRoute(keys: Pick<KeyRingSource, 'current'>, maxAgeSec: number): Middleware {
  const cacheControl = `public, max-age=${maxAgeSec}`;
  return function jwks(ctx) {
    const { body, etag } = keys.current().jwks;
    serve(ctx, body, etag, cacheControl, 'application/jwk-set+json');
  };
}

export interface MetadataDeps {
  readonly issuer: string;
  readonly keys: Pick<KeyRingSource, 'current'>;
  /** `scopes_supported`; omitted when empty. */
  readonly scopes: readonly string[];
  /** `Cache-Control: max-age` of the document; default 300 s. */
  readonly maxAgeSec?: number;
  /** Default `client_secret_basic`, `client_secret_post`. */
  readonly revocationAuthMethods?: readonly string[];
  /** Default `client_secret_basic`, `client_secret_post`. */
  readonly introspectionAuthMethods?: readonly string[];
}

/** GET /.well-known/oauth-authorization-server (RFC 8414 §3). */
export function metadataRoute(deps: MetadataDeps): Middleware {
  const cacheControl = `public, max-age=${deps.maxAgeSec ?? 300}`;
  let cached: { ring: KeyRing; body: Buffer; etag: string } | undefined;
  return function metadata(ctx) {
    const ring = deps.keys.current();
    if (cached?.ring !== ring) {
      const body = Buffer.from(JSON.stringify(metadataDocument(deps, ring)));
      cached = { ring, body, etag: strongEtag(body) };
    }
    serve(ctx, cached.body, cached.etag, cacheControl, 'application/json');
  };
}

/** The RFC 8414 §2 document. Only members that are true of this server are present. */
export function metadataDocument(deps: MetadataDeps, ring: KeyRing): Record<string, unknown> {
  const clientAuth = ['client_secret_basic', 'client_secret_post'];
  return {
    issuer: deps.issuer,
    token_endpoint: `${deps.issuer}/oauth/token`,
    jwks_uri: `${deps.issuer}/.well-known/jwks.json`,
    ...(deps.scopes.length > 0 && { scopes_supported: [...deps.scopes] }),
    // REQUIRED by §2 even without an authorization endpoint: this server supports none.
    response_types_supported: [],
    grant_types_supported: ['password', 'refresh_token', 'client_credentials'],
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

function serve(ctx: Parameters<Middleware>[0], body: Buffer, etag: string, cacheControl: string, type: string): void {
  ctx.set('Cache-Control', cacheControl);
  ctx.set('ETag', etag);
  ctx.type = type;
  ctx.status = 200;
  // Koa's `fresh` implements RFC 9110 §13.1.2 (If-None-Match, weak comparison, `*`).
  if (ctx.fresh) {
    ctx.status = 304;
    return;
  }
  ctx.body = body;
}

function strongEtag(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url')}"`;
}
