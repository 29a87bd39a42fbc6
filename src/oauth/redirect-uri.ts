/**
 * Redirect URIs of the authorization code flow. Registration accepts https, or http on a
 * loopback host (RFC 8252 §7.3, §8.3), never a fragment (RFC 6749 §3.1.2), userinfo or a
 * wildcard. A request's `redirect_uri` must equal a registered one as a string (RFC 9700
 * §4.1.3: no prefix, suffix, case or path normalisation), except that for an http URI on
 * the IP literals 127.0.0.1 and [::1] the port may differ (RFC 8252 §7.3: the app picks a
 * free port at run time).
 */

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
/** `http://` + an IP literal loopback host + an optional port + the rest, split literally. */
const LOOPBACK_IP = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::(\d{1,5}))?([/?].*)?$/;
const MAX_LENGTH = 2000;

/** Why `uri` cannot be registered, or undefined when it can. */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri.length > MAX_LENGTH) return `must be at most ${MAX_LENGTH} characters`;
  if (/[\s*#]/.test(uri)) return 'must not contain whitespace, a wildcard (*) or a fragment (#)';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.username || url.password) return 'must not contain userinfo';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  return 'must be https, or http on a loopback host (127.0.0.1, [::1], localhost)';
}

/** The registered URI `presented` matches, or undefined. */
export function matchRedirectUri(registered: readonly string[], presented: string): string | undefined {
  if (registered.includes(presented)) return presented;
  const key = loopbackKey(presented);
  return key === undefined ? undefined : registered.find((uri) => loopbackKey(uri) === key);
}

/** An http URI on a loopback IP literal without its port (host and the rest, literally); else undefined. */
function loopbackKey(uri: string): string | undefined {
  const match = LOOPBACK_IP.exec(uri);
  if (!match) return undefined;
  const [, host, port, rest = ''] = match;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return undefined;
  return `${host} ${rest}`;
}

/**
 * `uri` with `params` added to its query (RFC 6749 §4.1.2: the registered URI's own query
 * is kept as it is).
 */
export function withQuery(uri: string, params: Record<string, string | undefined>): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.append(name, value);
  return `${uri}${uri.includes('?') ? '&' : '?'}${query.toString()}`;
}
