/** Reading the access token from a request (RFC 6750 §2.1: the Authorization header only). */
import { TokenError } from './errors.js';

/** RFC 6750 §2.1 `b64token`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The token of an `Authorization: Bearer <token>` header. Throws missing_token when there
 * is no header or it uses another scheme (RFC 6750 §3.1: the request then "lacks any
 * authentication information"), malformed_token when the Bearer credentials are not a b64token.
 * Tokens in the query string (§2.3) are deliberately not read: they end up in logs.
 */
export function bearerToken(authorization: string | readonly string[] | undefined): string {
  if (authorization === undefined || authorization === '') throw new TokenError('missing_token', 'a Bearer access token is required');
  if (typeof authorization !== 'string') throw new TokenError('malformed_token', 'more than one Authorization header');
  const match = /^\s*([^\s]+)(?:\s+(.*?))?\s*$/.exec(authorization);
  if (match === null || match[1]!.toLowerCase() !== 'bearer') throw new TokenError('missing_token', 'a Bearer access token is required');
  const credentials = match[2] ?? '';
  if (!B64TOKEN.test(credentials)) throw new TokenError('malformed_token', 'the Authorization header does not hold a Bearer token');
  return credentials;
}
