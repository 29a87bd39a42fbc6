/**
 * Set-up shared by the verifier tests: RSA keys, tokens signed as the authority would sign
 * them (or as an attacker would), and a stand-in authority on a real local HTTP server
 * that serves RFC 8414 metadata and a JWKS and counts every request.
 */
import { generateKeyPair, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { exportJWK, SignJWT, type JWK, type JWTPayload } from 'jose';

export interface TestKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly jwk: JWK;
}

export async function rsaKey(kid: string = randomUUID()): Promise<TestKey> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  return { kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

export const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

export interface FakeAuthority {
  readonly issuer: string;
  readonly jwksUri: string;
  /** Requests so far, by path. */
  readonly hits: { metadata: number; jwks: number; notModified: number };
  /** What the next requests get; change freely. */
  keys: JWK[];
  metadataAlgs: unknown;
  metadataIssuer: string | undefined;
  cacheControl: string | undefined;
  /** The `Age` header of JWKS responses, as a shared cache on the way would add it. */
  age: string | undefined;
  /** When set, the JWKS is answered with this many bytes of chunked JSON (no Content-Length). */
  chunkedBytes: number | undefined;
  /** Bytes of that body written so far. */
  chunkedSent: number;
  /** When true, every request gets a 500. */
  failing: boolean;
  stop(): Promise<void>;
}

/** A stand-in authority on 127.0.0.1:<random port>; its issuer is its own URL. */
export async function startFakeAuthority(keys: readonly TestKey[]): Promise<FakeAuthority> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (authority.failing) {
      res.statusCode = 500;
      res.end('{"error":"server_error"}');
      return;
    }
    if (path === '/.well-known/oauth-authorization-server') {
      authority.hits.metadata++;
      res.setHeader('Content-Type', 'application/json');
      if (authority.cacheControl !== undefined) res.setHeader('Cache-Control', authority.cacheControl);
      res.end(
        JSON.stringify({
          issuer: authority.metadataIssuer ?? authority.issuer,
          jwks_uri: authority.jwksUri,
          ...(authority.metadataAlgs !== undefined && { access_token_signing_alg_values_supported: authority.metadataAlgs }),
        }),
      );
      return;
    }
    if (path === '/jwks') {
      authority.hits.jwks++;
      const body = JSON.stringify({ keys: authority.keys });
      const etag = `"${Buffer.from(body).length}-${authority.keys.map((key) => key.kid).join(',')}"`;
      if (authority.cacheControl !== undefined) res.setHeader('Cache-Control', authority.cacheControl);
      if (authority.age !== undefined) res.setHeader('Age', authority.age);
      if (authority.chunkedBytes !== undefined) {
        // Written as the client reads (waiting for drain), so chunkedSent tells how much it took.
        res.setHeader('Content-Type', 'application/jwk-set+json');
        const chunk = ' '.repeat(64 * 1024);
        const total = authority.chunkedBytes;
        let closed = false;
        res.once('close', () => (closed = true));
        void (async () => {
          while (!closed && authority.chunkedSent < total) {
            authority.chunkedSent += chunk.length;
            if (!res.write(chunk)) await drainedOrClosed(res);
          }
          if (!closed) res.end(body);
        })();
        return;
      }
      res.setHeader('ETag', etag);
      if (req.headers['if-none-match'] === etag) {
        authority.hits.notModified++;
        res.statusCode = 304;
        res.end();
        return;
      }
      res.setHeader('Content-Type', 'application/jwk-set+json');
      res.end(body);
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const issuer = `http://127.0.0.1:${port}`;
  const authority: FakeAuthority = {
    issuer,
    jwksUri: `${issuer}/jwks`,
    hits: { metadata: 0, jwks: 0, notModified: 0 },
    keys: keys.map((key) => key.jwk),
    metadataAlgs: ['RS256'],
    metadataIssuer: undefined,
    cacheControl: 'public, max-age=300',
    age: undefined,
    chunkedBytes: undefined,
    chunkedSent: 0,
    failing: false,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return authority;
}

export const AUDIENCE = 'https://api.example.test';
/** A fixed "now" for verifiers and tokens, in ms. */
export const NOW = Date.UTC(2026, 4, 1, 12, 0, 0);
export const NOW_S = NOW / 1000;

/** Claims as the authority issues them, valid at NOW for 15 minutes. */
export function claims(issuer: string, overrides: Record<string, unknown> = {}): JWTPayload {
  return {
    iss: issuer,
    sub: 'user-1',
    aud: AUDIENCE,
    iat: NOW_S,
    nbf: NOW_S,
    exp: NOW_S + 900,
    jti: randomUUID(),
    client_id: 'demo-app',
    scope: 'read write',
    email: 'demo@example.com',
    roles: ['admin'],
    sid: 'family-1',
    ...overrides,
  };
}

/** An RS256 JWS as the authority's signer produces it; `header` members replace (or, when undefined, drop) the defaults. */
export async function sign(key: Pick<TestKey, 'kid' | 'privateKey'>, payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const protectedHeader = Object.fromEntries(
    Object.entries({ alg: 'RS256', typ: 'at+jwt', kid: key.kid, ...header }).filter(([, value]) => value !== undefined),
  );
  return new SignJWT(payload).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
}

/** RS256 over exactly this header and payload, by hand: for headers jose will not sign (e.g. unknown `crit`). */
export function signRaw(privateKey: KeyObject, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${cryptoSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

/** Waits for `drain` or `close`, whichever comes first, and leaves no listener behind. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
