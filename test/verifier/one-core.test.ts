/**
 * The authority's own Bearer check and the verifier kit share one verification core
 * (packages/verifier/src/core.ts) and one Bearer parser (packages/verifier/src/bearer.ts): the same token and
 * the same Authorization headers get the same verdict on both sides.
 */
import { request as httpRequest } from 'node:http';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerToken, createVerifier, isTokenError, type Verifier } from '../../packages/verifier/src/index.js';
import { startAuthority, type RunningAuthority } from './real-authority.js';

let authority: RunningAuthority;
let verifier: Verifier;
let userToken: string;

beforeAll(async () => {
  authority = await startAuthority();
  verifier = createVerifier({ issuer: authority.url, audience: authority.service.config.audience });
  userToken = await authority.passwordToken();
});
afterAll(async () => {
  await authority?.stop();
});

/** GET /auth/me with exactly these Authorization header lines (node:http sends an array as several lines). */
function me(authorization: string | string[] | undefined): Promise<{ status: number; challenge: string | undefined; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${authority.url}/auth/me`,
      { headers: (authorization === undefined ? {} : { authorization }) as Record<string, string | string[]> },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, challenge: res.headers['www-authenticate'], body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A token like the authority's own, signed with its active key, with `changes` to the claims. */
async function forged(changes: Record<string, unknown>): Promise<string> {
  const { kid, alg, privateKey } = authority.service.keys.current().signingKey();
  const claims = { ...decodeJwt(userToken), jti: `forged-${Math.random()}`, ...changes };
  return new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(privateKey);
}

async function kitVerdict(token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'ok';
  } catch (err) {
    return isTokenError(err) ? err.code : `threw ${String(err)}`;
  }
}

describe('one verification core', () => {
  it("the control case: the authority's own token passes on both sides", async () => {
    expect(await kitVerdict(userToken)).toBe('ok');
    expect((await me(`Bearer ${userToken}`)).status).toBe(200);
  });

  it('an iat an hour in the future is refused by the kit and by the authority (hardening issue 6)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await forged({ iat: now + 3600, nbf: now, exp: now + 900 });
    expect(await kitVerdict(token)).toBe('invalid_token');
    const res = await me(`Bearer ${token}`);
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_token');
    const introspected = await fetch(`${authority.url}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: authority.service.basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    expect(await introspected.json()).toEqual({ active: false });
  });

  it('claims of the wrong type are refused on both sides', async () => {
    for (const changes of [{ roles: 'admin' }, { email: 42 }, { sid: ['x'] }, { aud: [authority.service.config.audience, 7] }, { jti: '' }]) {
      const token = await forged(changes);
      expect([JSON.stringify(changes), await kitVerdict(token)]).toEqual([JSON.stringify(changes), 'invalid_token']);
      expect([JSON.stringify(changes), (await me(`Bearer ${token}`)).status]).toEqual([JSON.stringify(changes), 401]);
    }
  });
});

describe('one Bearer parser', () => {
  /** The kit's verdict on the header: the code it throws, or "token". */
  const kit = (header: string | string[] | undefined) => {
    try {
      bearerToken(header);
      return 'token';
    } catch (err) {
      return isTokenError(err) ? err.code : 'threw';
    }
  };

  it('the authority answers each header as the kit parses it (RFC 6750 §3.1)', async () => {
    const headers: (string | string[] | undefined)[] = [
      undefined,
      'Basic abc',
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Bearer a,b',
      `Bearer\t${userToken}`,
      `bearer   ${userToken}`,
      [`Bearer ${userToken}`, `Bearer ${userToken}`],
      [`Bearer ${userToken}`, 'Basic abc'],
      'Bearer not.a.token',
    ];
    for (const header of headers) {
      const verdict = kit(header);
      const res = await me(header);
      const seen = { header, status: res.status, error: res.body.error, challenge: res.challenge };
      if (verdict === 'missing_token') {
        // §3.1: no authentication information, a bare challenge; the body keeps the server's error format.
        expect(seen).toEqual({ header, status: 401, error: 'invalid_token', challenge: 'Bearer' });
      } else if (verdict === 'invalid_request') {
        expect(seen).toEqual({ header, status: 400, error: 'invalid_request', challenge: expect.stringMatching(/^Bearer error="invalid_request"/) });
      } else {
        expect(verdict).toBe('token');
        expect([200, 401], JSON.stringify(seen)).toContain(res.status);
      }
    }
  });

  it('two Authorization headers are refused even when each holds a good token', async () => {
    const res = await me([`Bearer ${userToken}`, `Bearer ${userToken}`]);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });
});
