/**
 * The resource-server kit: verify the authority's access tokens offline, strictly, with
 * Koa or Express/`node:http` middleware. Depends on `jose` and Node built-ins only.
 */
export { bearerToken } from './bearer.js';
export { isTokenError, TokenError, type TokenErrorCode, type TokenErrorOptions, type TokenErrorStatus } from './errors.js';
export type { FetchLike } from './http.js';
export { DEFAULT_INTROSPECTION_CACHE_MS, MAX_INTROSPECTION_CACHE_MS, type IntrospectionOptions } from './introspection.js';
export { ASYMMETRIC_ALGORITHMS, metadataUrl } from './jwks.js';
export {
  assertRole,
  assertScopes,
  createVerifier,
  MAX_TOKEN_LENGTH,
  type VerifiedToken,
  type Verifier,
  type VerifierOptions,
  type VerifyOptions,
} from './verifier.js';
/** `koa.requireToken(verifier)`, `koa.requireScope(...)`, `koa.requireRole(...)`. */
export * as koa from './koa.js';
/** The same for Express, Connect and plain `node:http`: `(req, res, next)`. */
export * as express from './express.js';
