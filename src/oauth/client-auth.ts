/**
 * Client authentication for the token, revocation and introspection endpoints
 * (RFC 6749 §2.3.1): `client_secret_basic`, `client_secret_post`, or `none` (a public
 * client sends only its `client_id`). Every failure is 401 `invalid_client`.
 */
import { clientSecretMatches } from '../clients/secrets.js';
import { InvalidClientError, InvalidRequestError, TooManyRequestsError } from '../errors.js';
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

/** RFC 6749 §2.3.1: both parts are form-urlencoded before base64. */
function parseBasic(header: string): { clientId: string; clientSecret: string } {
  const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(header.trim());
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

/**
 * `failures` counts failed authentications per client id + IP; once its budget is spent
 * the endpoint answers 429 for that pair until the window ends, so a client secret cannot
 * be guessed online, and one attacker cannot lock a client out from everywhere.
 */
export function createClientAuthenticator({ clients, failures }: { clients: Pick<ClientStore, 'findById'>; failures: RateLimiter }) {
  return {
    /** The authenticated client; `invalid_client` for an unknown id, a wrong secret, or a method the client may not use. */
    async authenticate(credentials: ClientCredentials | undefined, ip: string): Promise<ClientRecord> {
      if (!credentials) throw new InvalidClientError('client authentication required');
      // A public client has no secret to guess: nothing to throttle, and no round trip.
      if (credentials.method === 'none') return check(credentials);
      const key = `${credentials.clientId}:${ip}`;
      const state = await failures.peek(key);
      if (!state.allowed) throw new TooManyRequestsError(state.retryAfterMs / 1000, 'too many failed client authentications, try again later');
      try {
        return await check(credentials);
      } catch (err) {
        if (err instanceof InvalidClientError) await failures.consume(key);
        throw err;
      }
    },
  };

  async function check(credentials: ClientCredentials): Promise<ClientRecord> {
    const client = await clients.findById(credentials.clientId);
    if (credentials.method === 'none') {
      if (client?.type !== 'public') throw new InvalidClientError('client authentication failed', { detail: `no secret for ${client ? 'confidential' : 'unknown'} client` });
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
