/**
 * The peer: node-oidc-provider configured for the same work as the authority, run in a
 * process of its own by `bench/run.ts` (never imported by it).
 *
 * - `client_credentials` for a confidential client (`client_secret_basic`);
 * - resource indicators (RFC 8707) with one resource server whose access tokens are RFC 9068
 *   JWTs signed RS256 (`accessTokenFormat: 'jwt'`), 15 minutes like ours;
 * - `refresh_token` for a public client, rotating on every use (`rotateRefreshToken: true`,
 *   as ours always does). oidc-provider only issues refresh tokens from interactive grants
 *   (authorization code, device code, CIBA), so the bench cannot obtain one over HTTP
 *   without driving a login page. Instead this process creates the Grant and the
 *   RefreshToken through the provider's own models, exactly what its authorization-code
 *   grant stores, and hands the token values to the bench over IPC; every refresh after
 *   that goes through the real token endpoint;
 * - an in-memory adapter (a Map: the bundled one is a 1,000-entry LRU, see MapAdapter).
 *
 * - `authorization_code` the same way: oidc-provider's codes come out of its interactions
 *   (a login and consent page the bench does not drive), so this process creates the Grant
 *   and the AuthorizationCode through its models, with the PKCE challenge the bench sends,
 *   exactly what a finished interaction stores; the exchange then goes through the real
 *   token endpoint (PKCE check, consumption, an RS256 JWT access token and a refresh token).
 *
 * Protocol (IPC): sends `{ type: 'ready', url }` once listening; answers
 * `{ type: 'seed', id, count }` with `{ type: 'seeded', id, tokens }` (refresh tokens) and
 * `{ type: 'seed-codes', id, count, challenge }` with `{ type: 'seeded', id, tokens }`
 * (authorization codes for redirect URI `PEER_REDIRECT_URI`). Exits on SIGTERM, SIGINT, or
 * when the parent goes away.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const PEER_RESOURCE = 'urn:bench:api';
const PEER_SERVICE_CLIENT = { id: 'bench-service', secret: process.env.PEER_CLIENT_SECRET ?? '' };
const PEER_PUBLIC_CLIENT = 'bench-app';
const ACCOUNT_ID = 'bench-user';
const PEER_REDIRECT_URI = 'http://127.0.0.1/callback';

async function main(): Promise<void> {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0) throw new Error('PORT must be set');
  if (PEER_SERVICE_CLIENT.secret.length < 32) throw new Error('PEER_CLIENT_SECRET must be set (32+ characters)');
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'bench-rs256' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: PEER_SERVICE_CLIENT.id,
        client_secret: PEER_SERVICE_CLIENT.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'read write',
      },
      {
        client_id: PEER_PUBLIC_CLIENT,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [PEER_REDIRECT_URI],
        token_endpoint_auth_method: 'none',
        scope: 'read offline_access',
      },
    ],
    jwks: { keys: [jwk as never] },
    scopes: ['read', 'write', 'offline_access'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => PEER_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          if (resource !== PEER_RESOURCE) throw new Provider.errors.InvalidTarget();
          return { scope: 'read write', audience: PEER_RESOURCE, accessTokenTTL: 900, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
    adapter: MapAdapter,
    rotateRefreshToken: true,
    ttl: { AccessToken: 900, ClientCredentials: 900, RefreshToken: 7 * 86400, Grant: 7 * 86400 },
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
    // Silences the "use your own cookie keys" warning; no cookie is set by these grants.
    cookies: { keys: ['bench-cookie-key-0123456789abcdef'] },
  } as never);

  async function newGrant(): Promise<string> {
    const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: PEER_PUBLIC_CLIENT });
    grant.addOIDCScope('offline_access');
    grant.addResourceScope(PEER_RESOURCE, 'read');
    return grant.save();
  }

  async function seedCodes(count: number, challenge: string): Promise<string[]> {
    const client = await provider.Client.find(PEER_PUBLIC_CLIENT);
    if (!client) throw new Error('peer public client missing');
    const codes: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const code = new provider.AuthorizationCode({
        accountId: ACCOUNT_ID,
        client,
        grantId: await newGrant(),
        redirectUri: PEER_REDIRECT_URI,
        scope: 'read offline_access',
        resource: PEER_RESOURCE,
        codeChallenge: challenge,
        codeChallengeMethod: 'S256',
        authTime: Math.floor(Date.now() / 1000),
        expiresWithSession: false,
      });
      codes.push(await code.save());
    }
    return codes;
  }

  async function seed(count: number): Promise<string[]> {
    const client = await provider.Client.find(PEER_PUBLIC_CLIENT);
    if (!client) throw new Error('peer public client missing');
    const tokens: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const grantId = await newGrant();
      const refreshToken = new provider.RefreshToken({
        accountId: ACCOUNT_ID,
        client,
        grantId,
        gty: 'authorization_code',
        scope: 'read offline_access',
        resource: PEER_RESOURCE,
        expiresWithSession: false,
      });
      tokens.push(await refreshToken.save());
    }
    return tokens;
  }

  const server = createServer(provider.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  process.on('message', (message: { type?: string; id?: number; count?: number; challenge?: string }) => {
    const work =
      message?.type === 'seed' ? seed(message.count ?? 0) : message?.type === 'seed-codes' ? seedCodes(message.count ?? 0, message.challenge ?? '') : undefined;
    work?.then(
      (tokens) => process.send?.({ type: 'seeded', id: message.id, tokens }),
      (err: unknown) => process.send?.({ type: 'seeded', id: message.id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', url: issuer });
}

/**
 * oidc-provider's bundled memory adapter is an LRU of 1,000 entries: after a full-length
 * client_credentials run the refresh tokens seeded for the next workload are evicted
 * before their first use ("refresh token not found"). This unbounded Map is the same
 * in-process store without that artefact (entries still expire).
 */
class MapAdapter {
  static readonly store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  constructor(private readonly model: string) {}
  private key(id: string): string {
    return `${this.model}:${id}`;
  }
  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
    MapAdapter.store.set(this.key(id), { payload: { ...payload }, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }
  async find(id: string): Promise<Record<string, unknown> | undefined> {
    const entry = MapAdapter.store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      MapAdapter.store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const entry = MapAdapter.store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    MapAdapter.store.delete(this.key(id));
  }
  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [key, entry] of MapAdapter.store) if (entry.payload.grantId === grantId) MapAdapter.store.delete(key);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`peer-oidc: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
