/** Reading the access token from a request (RFC 6750 §2.1: the Authorization header only). */
import { TokenError } from './errors.js';

/** RFC 6750 §2.1 `b64token`. No backtracking: `=` is not in the class before it. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The token of an `Authorization: Bearer <token>` header. Throws missing_token when there
 * is no header or it uses another scheme (RFC 6750 §3.1: the request then "lacks any
 * authentication information"), invalid_request (400) when the Bearer credentials are not
 * one b64token or there is more than one Authorization header (§3.1: "otherwise malformed").
 * Pass every value the request carried (Node's `req.headersDistinct.authorization`): Node
 * keeps only the first in `req.headers`, which would let a second header go unnoticed.
 * Tokens in the query string (§2.3) are deliberately not read: they end up in logs.
 */
export function bearerToken(authorization: string | readonly string[] | undefined): string {
  let header: string | undefined;
  if (typeof authorization === 'string' || authorization === undefined) {
    header = authorization;
  } else {
    if (authorization.length > 1) throw new TokenError('invalid_request', 'more than one Authorization header');
    header = authorization[0];
  }
  // Split by hand, not with a regex over the whole header: every step here is linear in
  // its length, whatever whitespace an attacker puts in it.
  const trimmed = (header ?? '').trim();
  if (trimmed === '') throw new TokenError('missing_token', 'a Bearer access token is required');
  const gap = trimmed.search(/\s/);
  const scheme = gap === -1 ? trimmed : trimmed.slice(0, gap);
  if (scheme.toLowerCase() !== 'bearer') throw new TokenError('missing_token', 'a Bearer access token is required');
  const credentials = gap === -1 ? '' : trimmed.slice(gap).trimStart();
  if (!B64TOKEN.test(credentials)) throw new TokenError('invalid_request', 'the Authorization header does not hold a Bearer token');
  return credentials;
}
