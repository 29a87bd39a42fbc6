/**
 * The verifier's requests to the authority never follow a redirect: a 3xx from the
 * metadata, JWKS or introspection URL is a failed request. Otherwise whoever can make one
 * of those URLs redirect (an open redirect on the authority's host, a hijacked path)
 * chooses the keys we trust, or receives the tokens we introspect.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier, TokenError, type Verifier } from '../../packages/verifier/src/index.js';
import { AUDIENCE, claims, NOW, rsaKey, sign, startFakeAuthority, type FakeAuthority, type TestKey } from './helpers.js';

interface Local {
  readonly url: string;
  /** Requests so far. */
  hits: number;
  stop(): Promise<void>;
}

const running: Local[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse, local: Local) => void): Promise<Local> {
  const server = createServer((req, res) => {
    local.hits++;
    handler(req, res, local);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const local: Local = {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    hits: 0,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  running.push(local);
  return local;
}

const json = (res: ServerResponse, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
};

let real: TestKey;
let attacker: TestKey;
beforeAll(async () => {
  [real, attacker] = await Promise.all([rsaKey('real-key'), rsaKey('attacker-key')]);
});

const ISSUER = 'https://as.example.test';

async function outcome(verifier: Verifier, token: string): Promise<string> {
  return verifier.verify(token).then(
    () => 'verified',
    (err: unknown) => (err instanceof TokenError ? err.code : `not a TokenError: ${String(err)}`),
  );
}

describe('redirects', () => {
  it('of the JWKS URL are not followed: nothing is loaded, and the other origin is never asked', async () => {
    const evil = await serve((_req, res) => json(res, { keys: [attacker.jwk] }));
    for (const status of [301, 302, 303, 307, 308]) {
      const jwks = await serve((_req, res) => res.writeHead(status, { location: `${evil.url}/jwks` }).end());
      const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: `${jwks.url}/jwks`, algorithms: ['RS256'], now: () => NOW });
      expect(await outcome(verifier, await sign(attacker, claims(ISSUER)))).toBe('temporarily_unavailable');
      expect(jwks.hits).toBe(1);
    }
    expect(evil.hits).toBe(0);
  });

  it('of the JWKS URL on a refetch count as a failed refetch: the key set held stays in use', async () => {
    const evil = await serve((_req, res) => json(res, { keys: [real.jwk, { ...attacker.jwk, kid: 'real-key' }, attacker.jwk] }));
    let redirecting = false;
    // no-cache and no cooldown: every verification refetches.
    const jwks = await serve((_req, res) =>
      redirecting ? res.writeHead(302, { location: `${evil.url}/jwks` }).end() : json(res, { keys: [real.jwk] }, { 'cache-control': 'no-cache' }),
    );
    const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri: `${jwks.url}/jwks`, algorithms: ['RS256'], cooldownMs: 0, now: () => NOW });
    expect(await outcome(verifier, await sign(real, claims(ISSUER)))).toBe('verified');
    redirecting = true;
    expect(await outcome(verifier, await sign(real, claims(ISSUER)))).toBe('verified');
    expect(await outcome(verifier, await sign(attacker, claims(ISSUER)))).toBe('invalid_token');
    expect(jwks.hits).toBeGreaterThanOrEqual(3);
    expect(evil.hits).toBe(0);
  });

  it('of the metadata URL are not followed', async () => {
    let issuer = '';
    // Metadata that names the issuer we asked for, and a JWKS of the attacker's keys.
    const evil = await serve((req, res, self) =>
      req.url === '/jwks'
        ? json(res, { keys: [attacker.jwk] })
        : json(res, { issuer, jwks_uri: `${self.url}/jwks`, access_token_signing_alg_values_supported: ['RS256'] }),
    );
    const as = await serve((req, res) => res.writeHead(302, { location: `${evil.url}${req.url}` }).end());
    issuer = as.url;
    const verifier = createVerifier({ issuer, audience: AUDIENCE, now: () => NOW });
    expect(await outcome(verifier, await sign(attacker, claims(issuer)))).toBe('temporarily_unavailable');
    expect(as.hits).toBe(1);
    expect(evil.hits).toBe(0);
  });

  it('of the introspection endpoint are not followed: the token is never posted to another origin', async () => {
    let authority: FakeAuthority | undefined;
    try {
      authority = await startFakeAuthority([real]);
      const evil = await serve((_req, res) => json(res, { active: true }));
      for (const status of [307, 308, 302]) {
        const introspection = await serve((_req, res) => res.writeHead(status, { location: `${evil.url}/introspect` }).end());
        const verifier = createVerifier({
          issuer: authority.issuer,
          audience: AUDIENCE,
          now: () => NOW,
          introspect: { url: `${introspection.url}/introspect`, clientId: 'rs', clientSecret: 'secret' },
        });
        expect(await outcome(verifier, await sign(real, claims(authority.issuer)))).toBe('temporarily_unavailable');
        expect(introspection.hits).toBe(1);
      }
      expect(evil.hits).toBe(0);
    } finally {
      await authority?.stop();
    }
  });
});
