/**
 * The second peer: @node-oauth/oauth2-server (issue 18 item 5), run in a process of its own
 * like `peer-oidc.ts`, with a Redis-backed model written here:
 *
 * - `password` for a public client: the user's argon2id hash (the authority's parameters,
 *   from ARGON2_MEMORY_KIB / ARGON2_TIME_COST / ARGON2_PARALLELISM) is read from Redis and
 *   verified;
 * - `refresh_token`, rotating on every use (the library's default): the refresh token is
 *   a Redis key holding its grant, read by `getRefreshToken` and deleted by `revokeToken`
 *   (DEL: only one of concurrent presentations wins; no families, no reuse detection);
 * - access tokens are RFC 9068-shaped JWTs signed RS256 with jose, 15 minutes, not stored.
 *
 * `bench/run.ts` measures it beside ours in the refresh and login workloads. Protocol (IPC), as the other peer's: sends
 * `{ type: 'ready', url }` once listening; answers `{ type: 'seed', id, count }` with
 * `{ type: 'seeded', id, tokens }` (refresh tokens saved through the model). Env: PORT,
 * REDIS_URL, PEER_USER_EMAIL, PEER_USER_PASSWORD.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import OAuth2Server, { Request, Response, type Client, type Falsey, type RefreshToken, type Token, type User } from '@node-oauth/oauth2-server';
import argon2 from 'argon2';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';

const CLIENT: Client = { id: 'bench-app', grants: ['password', 'refresh_token'] };
const ACCESS_TTL_S = 900;
const REFRESH_TTL_S = 7 * 24 * 3600;
const rtKey = (token: string) => `peer2:rt:${token}`;
const userKey = (email: string) => `peer2:user:${email}`;

interface StoredRefresh {
  readonly user: string;
  readonly scope: string[];
  readonly expiresAt: number;
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0) throw new Error('PORT must be set');
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const argonOptions = {
    type: argon2.argon2id as 2,
    memoryCost: Number(process.env.ARGON2_MEMORY_KIB ?? 19456),
    timeCost: Number(process.env.ARGON2_TIME_COST ?? 2),
    parallelism: Number(process.env.ARGON2_PARALLELISM ?? 1),
  };
  const email = process.env.PEER_USER_EMAIL ?? 'bench@example.com';
  await redis.set(
    userKey(email),
    JSON.stringify({ id: 'bench-user', hash: await argon2.hash(process.env.PEER_USER_PASSWORD ?? 'bench password', argonOptions) }),
  );

  const saveRefresh = async (token: string, user: string, scope: string[], expiresAt: Date) => {
    const stored: StoredRefresh = { user, scope, expiresAt: expiresAt.getTime() };
    await redis.set(rtKey(token), JSON.stringify(stored), 'PX', Math.max(1, expiresAt.getTime() - Date.now()));
  };

  const model = {
    async getClient(clientId: string): Promise<Client | Falsey> {
      return clientId === CLIENT.id ? CLIENT : null;
    },
    async getUser(username: string, password: string): Promise<User | Falsey> {
      const raw = await redis.get(userKey(username));
      if (!raw) return null;
      const stored = JSON.parse(raw) as { id: string; hash: string };
      return (await argon2.verify(stored.hash, password)) ? { id: stored.id, email: username } : null;
    },
    async generateAccessToken(client: Client, user: User, scope: string[]): Promise<string> {
      return new SignJWT({ client_id: client.id, scope: scope.join(' '), email: user.email, jti: randomUUID() })
        .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'peer2-rs256' })
        .setIssuer(issuer)
        .setSubject(String(user.id))
        .setAudience(issuer)
        .setIssuedAt()
        .setExpirationTime(`${ACCESS_TTL_S}s`)
        .sign(privateKey);
    },
    async saveToken(token: Token, client: Client, user: User): Promise<Token> {
      if (token.refreshToken && token.refreshTokenExpiresAt)
        await saveRefresh(token.refreshToken, String(user.id), token.scope ?? [], token.refreshTokenExpiresAt);
      return { ...token, client, user };
    },
    async getRefreshToken(refreshToken: string): Promise<RefreshToken | Falsey> {
      const raw = await redis.get(rtKey(refreshToken));
      if (!raw) return null;
      const stored = JSON.parse(raw) as StoredRefresh;
      return { refreshToken, refreshTokenExpiresAt: new Date(stored.expiresAt), scope: stored.scope, client: CLIENT, user: { id: stored.user, email } };
    },
    async revokeToken(token: RefreshToken): Promise<boolean> {
      return (await redis.del(rtKey(token.refreshToken))) === 1;
    },
    async getAccessToken(): Promise<Falsey> {
      return null;
    },
    async validateScope(_user: User, _client: Client, scope?: string[]): Promise<string[]> {
      return scope && scope.length > 0 ? scope : ['profile'];
    },
  };
  const oauth = new OAuth2Server({
    model,
    accessTokenLifetime: ACCESS_TTL_S,
    refreshTokenLifetime: REFRESH_TTL_S,
    requireClientAuthentication: { password: false, refresh_token: false },
  });

  const readForm = async (req: IncomingMessage): Promise<Record<string, string>> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
  };

  const server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST' || req.url !== '/token') {
        res.writeHead(404).end();
        return;
      }
      const headers = Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, String(value)]));
      const request = new Request({ method: req.method, query: {}, headers, body: await readForm(req) });
      const response = new Response();
      try {
        await oauth.token(request, response);
      } catch {
        // The library has put the OAuth error into `response`.
      }
      res.writeHead(response.status ?? 500, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(response.body ?? {}));
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  async function seed(count: number): Promise<string[]> {
    const tokens: string[] = [];
    for (let index = 0; index < count; index += 1) {
      const token = randomBytes(32).toString('hex');
      await saveRefresh(token, 'bench-user', ['profile'], new Date(Date.now() + REFRESH_TTL_S * 1000));
      tokens.push(token);
    }
    return tokens;
  }

  process.on('message', (message: { type?: string; id?: number; count?: number }) => {
    if (message?.type !== 'seed') return;
    seed(message.count ?? 0).then(
      (tokens) => process.send?.({ type: 'seeded', id: message.id, tokens }),
      (err: unknown) => process.send?.({ type: 'seeded', id: message.id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', url: issuer });
  if (!process.send) console.log(`peer2 listening on ${issuer}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
