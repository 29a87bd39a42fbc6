/**
 * Client authentication for the token, revocation and introspection endpoints
 * (RFC 6749 §2.3.1): `client_secret_basic`, `client_secret_post`, or `none` (a public
 * client sends only its `client_id`). Every failure is 401 `invalid_client`.
 */
import { LRUCache } from 'lru-cache';
import { clientSecretMatches } from '../clients/secrets.js';
import type { Clock } from '../clock.js';
import { InvalidClientError, InvalidRequestError, TooManyRequestsError } from '../errors.js';
import { clientNetwork } from '../net.js';
import type { ClientRecord, ClientStore, RateLimiter } from '../stores/types.js';

export interface ClientCredentials {
  readonly method: 'client_secret_basic' | 'client_secret_post' | 'none';
  readonly clientId: string;
  readonly clientSecret: string | undefined;
}

const MAX_ID_LENGTH = 128;
const MAX_SECRET_LENGTH = 512;

/**
 * Reads the credentials from the `Authorization` header and the body. Using two methods
 * at once is `invalid_request` (RFC 6749 §2.3: "MUST NOT use more than one").
 */
export function readClientCredentials(authorization: string | undefined, body: Record<string, unknown>): ClientCredentials | undefined {
  const bodyId = optionalString(body, 'client_id');
  const bodySecret = optionalString(body, 'client_secret');
  if (authorization !== undefined && authorization !== '') {
    const basic = parseBasic(authorization);
    if (bodySecret !== undefined) throw new InvalidRequestError('use one client authentication method, not Basic and client_secret together');
    if (bodyId !== undefined && bodyId !== basic.clientId) throw new InvalidRequestError('client_id in the body differs from the Basic credentials');
    return { method: 'client_secret_basic', ...basic };
  }
  if (bodyId === undefined) return undefined;
  return bodySecret === undefined
    ? { method: 'none', clientId: bodyId, clientSecret: undefined }
    : { method: 'client_secret_post', clientId: bodyId, clientSecret: bodySecret };
}

/** RFC 6749 §2.3.1: both parts are form-urlencoded before base64. RFC 7235 §2.1: `auth-scheme 1*SP token68`. */
function parseBasic(header: string): { clientId: string; clientSecret: string } {
  const match = /^Basic +([A-Za-z0-9+/]+={0,2})$/i.exec(header.trim());
  if (!match) throw new InvalidClientError('malformed Authorization header: expected Basic credentials');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) throw new InvalidClientError('malformed Basic credentials');
  try {
    const clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    const clientSecret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
    if (clientId.length > MAX_ID_LENGTH || clientSecret.length > MAX_SECRET_LENGTH) throw new Error('too long');
    return { clientId, clientSecret };
  } catch {
    throw new InvalidClientError('malformed Basic credentials');
  }
}

function optionalString(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > (name === 'client_secret' ? MAX_SECRET_LENGTH : MAX_ID_LENGTH)) {
    throw new InvalidRequestError(`${name} must be a non-empty string`);
  }
  return value;
}

/** How many over-budget pairs one process remembers; beyond it, the one least recently seen is forgotten. */
const BLOCKED_PAIRS_KEPT = 10_000;

/**
 * `failures` counts failed authentications per client id + IP, in the shared store. A
 * failure that finds the budget spent is answered 429 (not 401) and the pair is remembered
 * in this process until the window ends: from then on this process answers that pair 429
 * before looking at the secret, right or wrong.
 *
 * A success costs no round trip: the shared counter is only read when an authentication
 * fails. So an instance that has not itself refused the pair yet still accepts its correct
 * secret; an attacker gets at most the budget plus one guess per instance per window, and
 * the secrets are 256-bit random values (`client:create`), which no such number of guesses
 * finds. One attacker still cannot lock a client out from everywhere: only its own pairs.
 */
export function createClientAuthenticator({ clients, failures, clock }: { clients: Pick<ClientStore, 'findById'>; failures: RateLimiter; clock: Clock }) {
  /** Pair → end of its window (ms), for the pairs this process has refused; each kept until then. */
  const blocked = new LRUCache<string, number>({ max: BLOCKED_PAIRS_KEPT, perf: clock, ttlResolution: 0 });

  function refusal(untilMs: number, now: number): TooManyRequestsError {
    return new TooManyRequestsError(Math.max(0, untilMs - now) / 1000, 'too many failed client authentications, try again later');
  }

  return {
    /** The authenticated client; `invalid_client` for an unknown id, a wrong secret, or a method the client may not use. */
    async authenticate(credentials: ClientCredentials | undefined, ip: string): Promise<ClientRecord> {
      if (!credentials) throw new InvalidClientError('client authentication required');
      // A public client has no secret to guess: nothing to throttle.
      if (credentials.method === 'none') return check(credentials);
      // Per IPv4 address or IPv6 /64, as logins are: any host can rotate through its /64.
      const key = `${credentials.clientId}:${clientNetwork(ip)}`;
      const until = blocked.get(key);
      if (until !== undefined) throw refusal(until, clock.now());
      try {
        return await check(credentials);
      } catch (err) {
        if (!(err instanceof InvalidClientError)) throw err;
        const state = await failures.consume(key);
        if (state.allowed) throw err;
        const now = clock.now();
        remember(key, now + state.retryAfterMs, now);
        throw refusal(now + state.retryAfterMs, now);
      }
    },
  };

  function remember(key: string, untilMs: number, now: number): void {
    // A TTL of 0 is "forever" to lru-cache; a window already over needs no memory.
    if (untilMs <= now) return;
    // When full, pairs whose window is over go before the live one least recently seen.
    if (blocked.size >= BLOCKED_PAIRS_KEPT) blocked.purgeStale();
    blocked.set(key, untilMs, { ttl: untilMs - now });
  }

  async function check(credentials: ClientCredentials): Promise<ClientRecord> {
    const client = await clients.findById(credentials.clientId);
    if (credentials.method === 'none') {
      if (client?.type !== 'public')
        throw new InvalidClientError('client authentication failed', { detail: `no secret for ${client ? 'confidential' : 'unknown'} client` });
      return client;
    }
    // Compare even for an unknown client so that timing does not tell which ids exist.
    const matches = clientSecretMatches(credentials.clientSecret ?? '', client?.secretHash);
    if (!client || client.type !== 'confidential' || !matches) {
      throw new InvalidClientError('client authentication failed', { detail: client ? 'wrong secret or public client' : 'unknown client' });
    }
    return client;
  }
}

export type ClientAuthenticator = ReturnType<typeof createClientAuthenticator>;
