/**
 * The Koa and `(req, res, next)` middleware over real HTTP: 400 vs 401 vs 403 per RFC 6750 §3.1,
 * the WWW-Authenticate header, the JSON body, and 503 when nothing can be checked.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertRole,
  assertScopes,
  bearerToken,
  createVerifier,
  express,
  koa,
  TokenError,
  type VerifiedToken,
  type Verifier,
} from '../../packages/verifier/src/index.js';
import { AUDIENCE, claims, NOW, NOW_S, rsaKey, sign, startFakeAuthority, type FakeAuthority, type TestKey } from './helpers.js';

let authority: FakeAuthority;
let down: FakeAuthority;
let key: TestKey;
let verifier: Verifier;
let unavailable: Verifier;
const servers: Server[] = [];
const tokens: Record<'reader' | 'admin' | 'expired' | 'forged', string> = { reader: '', admin: '', expired: '', forged: '' };

async function listen(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

beforeAll(async () => {
  key = await rsaKey();
  authority = await startFakeAuthority([key]);
  verifier = createVerifier({ issuer: authority.issuer, audience: AUDIENCE, now: () => NOW });
  // An authority that is down from the start: nothing can be verified.
  down = await startFakeAuthority([key]);
  down.failing = true;
  unavailable = createVerifier({ issuer: down.issuer, audience: AUDIENCE, now: () => NOW });
  const attacker = await rsaKey(key.kid);
  tokens.reader = await sign(key, claims(authority.issuer, { scope: 'read', roles: [] }));
  tokens.admin = await sign(key, claims(authority.issuer, { scope: 'read write', roles: ['editor', 'admin'] }));
  tokens.expired = await sign(key, claims(authority.issuer, { exp: NOW_S - 120 }));
  tokens.forged = await sign(attacker, claims(authority.issuer));
});
afterAll(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  await Promise.all([authority?.stop(), down?.stop()]);
});

interface Result {
  status: number;
  challenge: string | null;
  body: unknown;
}

async function get(base: string, path: string, authorization?: string): Promise<Result> {
  const response = await fetch(`${base}${path}`, { headers: authorization === undefined ? {} : { authorization } });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, challenge: response.headers.get('www-authenticate'), body };
}

const errorBody = (error: string) => ({ error, error_description: expect.any(String) });

/**
 * GET over a raw socket with exactly these header lines: fetch (and every client library)
 * would merge or refuse repeated Authorization headers before they reach the server.
 */
async function rawGet(base: string, path: string, headerLines: string[]): Promise<{ status: number; body: string }> {
  const socket = connect(Number(new URL(base).port), '127.0.0.1');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headerLines.map((line) => `${line}\r\n`).join('')}Connection: close\r\n\r\n`);
  let text = '';
  for await (const chunk of socket) text += String(chunk);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) };
}

/** The same table of cases, whichever framework serves the routes. */
function behavesPerRfc6750(base: () => string) {
  it('401 with a bare Bearer challenge when there is no token', async () => {
    expect(await get(base(), '/read')).toEqual({ status: 401, challenge: 'Bearer', body: errorBody('missing_token') });
  });

  it('401 with a bare challenge for another authentication scheme', async () => {
    expect(await get(base(), '/read', 'Basic ZGVtbzpzZWNyZXQ=')).toEqual({ status: 401, challenge: 'Bearer', body: errorBody('missing_token') });
  });

  it('401 with a bare challenge for a scheme that only starts with Bearer', async () => {
    for (const header of ['Bearerx abc', `Bearerx ${tokens.reader}`, `BearerBearer ${tokens.reader}`]) {
      expect(await get(base(), '/read', header)).toEqual({ status: 401, challenge: 'Bearer', body: errorBody('missing_token') });
    }
  });

  it('400 invalid_request for a Bearer header that is itself malformed (RFC 6750 §3.1)', async () => {
    for (const header of ['Bearer', 'Bearer ', 'Bearer a b', 'Bearer {"alg":"none"}', 'Bearer a=b']) {
      const result = await get(base(), '/read', header);
      expect(result).toEqual({
        status: 400,
        challenge: expect.stringMatching(/^Bearer error="invalid_request", error_description="[^"]+"$/),
        body: errorBody('invalid_request'),
      });
    }
  });

  it('401 invalid_token for a well-formed Bearer header whose token is not a JWS', async () => {
    const result = await get(base(), '/read', 'Bearer abc.def');
    expect(result).toEqual({
      status: 401,
      challenge: expect.stringMatching(/^Bearer error="invalid_token", error_description="[^"]+"$/),
      body: errorBody('malformed_token'),
    });
  });

  it('400 invalid_request for two Authorization headers, whichever comes first', async () => {
    const good = `Authorization: Bearer ${tokens.reader}`;
    for (const lines of [
      [good, 'Authorization: junk'],
      ['Authorization: junk', good],
      [good, good],
    ]) {
      const result = await rawGet(base(), '/read', lines);
      expect(result.status).toBe(400);
      expect(JSON.parse(result.body)).toEqual(errorBody('invalid_request'));
    }
    expect((await rawGet(base(), '/read', [good])).status).toBe(200);
  });

  it('401 invalid_token for a forged token', async () => {
    const result = await get(base(), '/read', `Bearer ${tokens.forged}`);
    expect(result).toEqual({
      status: 401,
      challenge: 'Bearer error="invalid_token", error_description="the token signature is invalid"',
      body: errorBody('invalid_token'),
    });
  });

  it('401 with the precise code in the body but invalid_token in the header for an expired token', async () => {
    const result = await get(base(), '/read', `Bearer ${tokens.expired}`);
    expect(result).toEqual({
      status: 401,
      challenge: 'Bearer error="invalid_token", error_description="the token has expired"',
      body: errorBody('expired_token'),
    });
  });

  it('200 with the claims for a valid token; the scheme is case-insensitive', async () => {
    expect(await get(base(), '/read', `Bearer ${tokens.reader}`)).toMatchObject({ status: 200, body: { sub: 'user-1', scope: ['read'] } });
    expect(await get(base(), '/read', `bearer ${tokens.reader}`)).toMatchObject({ status: 200 });
  });

  it('403 insufficient_scope naming the required scope for a valid token without it', async () => {
    const result = await get(base(), '/write', `Bearer ${tokens.reader}`);
    expect(result).toEqual({
      status: 403,
      challenge: 'Bearer error="insufficient_scope", error_description="the token lacks the scope write", scope="read write"',
      body: errorBody('insufficient_scope'),
    });
    expect(await get(base(), '/write', `Bearer ${tokens.admin}`)).toMatchObject({ status: 200 });
  });

  it('403 insufficient_scope for a valid token without any of the roles', async () => {
    const result = await get(base(), '/admin', `Bearer ${tokens.reader}`);
    expect(result).toEqual({
      status: 403,
      challenge: expect.stringMatching(/^Bearer error="insufficient_scope", error_description="[^"]*admin[^"]*"$/),
      body: errorBody('insufficient_scope'),
    });
    expect(await get(base(), '/admin', `Bearer ${tokens.admin}`)).toMatchObject({ status: 200 });
  });

  it('401, not 403, for a bad token on a route that also needs a role', async () => {
    expect(await get(base(), '/admin', `Bearer ${tokens.forged}`)).toMatchObject({ status: 401 });
    expect(await get(base(), '/admin')).toMatchObject({ status: 401, challenge: 'Bearer' });
  });

  it('403 from a handler that checks a scope itself', async () => {
    expect(await get(base(), '/inline', `Bearer ${tokens.reader}`)).toMatchObject({ status: 403, body: errorBody('insufficient_scope') });
    expect(await get(base(), '/inline', `Bearer ${tokens.admin}`)).toMatchObject({ status: 200 });
  });

  it('503 without a challenge when the authority cannot be reached', async () => {
    expect(await get(base(), '/down', `Bearer ${tokens.reader}`)).toEqual({ status: 503, challenge: null, body: errorBody('temporarily_unavailable') });
  });

  it('500, not a silent 401, when requireRole is used without requireToken', async () => {
    expect((await get(base(), '/miswired', `Bearer ${tokens.admin}`)).status).toBe(500);
  });
}

describe('Koa middleware', () => {
  let base = '';
  beforeAll(async () => {
    const app = new Koa<koa.TokenState>();
    app.silent = true;
    const router = new Router<koa.TokenState>();
    const { requireToken, requireScope, requireRole } = koa;
    router.get('/read', requireToken(verifier), (ctx) => {
      ctx.body = { sub: ctx.state.token.sub, scope: [...ctx.state.token.scope] };
    });
    router.get('/write', requireToken(verifier), requireScope('read', 'write'), (ctx) => {
      ctx.body = { ok: true };
    });
    router.get('/admin', requireToken(verifier), requireRole('admin', 'owner'), (ctx) => {
      ctx.body = { ok: true };
    });
    router.get('/inline', requireToken(verifier), (ctx) => {
      assertScopes(ctx.state.token, ['write']);
      ctx.body = { ok: true };
    });
    router.get('/down', requireToken(unavailable), (ctx) => {
      ctx.body = { ok: true };
    });
    router.get('/miswired', requireRole('admin'), (ctx) => {
      ctx.body = { ok: true };
    });
    app.use(router.routes());
    base = await listen(app.callback());
  });
  behavesPerRfc6750(() => base);
});

type Handler = (req: IncomingMessage & express.NodeRequestLike, res: ServerResponse, next: (err?: unknown) => void) => void;

/** The smallest Express-like router: run handlers in order, `next(err)` goes to the error handlers. */
function route(
  handlers: Record<string, Handler[]>,
  errorHandlers: ((err: unknown, req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void)[],
): RequestListener {
  return (req, res) => {
    const chain = handlers[req.url ?? ''] ?? [];
    let i = 0;
    let e = 0;
    const fail = (err: unknown): void => {
      const handler = errorHandlers[e++];
      if (handler) return handler(err, req, res, (again) => fail(again ?? err));
      res.statusCode = 500;
      res.end(JSON.stringify({ error: 'server_error' }));
    };
    const next = (err?: unknown): void => {
      if (err !== undefined) return fail(err);
      const handler = chain[i++];
      if (!handler) return void res.writeHead(404).end();
      try {
        handler(req, res, next);
      } catch (thrown) {
        fail(thrown);
      }
    };
    next();
  };
}

describe('(req, res, next) middleware on plain node:http', () => {
  let base = '';
  beforeAll(async () => {
    const { requireToken, requireScope, requireRole, tokenErrorHandler } = express;
    const send = (res: ServerResponse, body: unknown) => res.setHeader('Content-Type', 'application/json').end(JSON.stringify(body));
    base = await listen(
      route(
        {
          '/read': [requireToken(verifier), (req, res) => send(res, { sub: req.token!.sub, scope: [...req.token!.scope] })],
          '/write': [requireToken(verifier), requireScope('read', 'write'), (_req, res) => send(res, { ok: true })],
          '/admin': [requireToken(verifier), requireRole('admin', 'owner'), (_req, res) => send(res, { ok: true })],
          '/inline': [
            requireToken(verifier),
            (req, res) => {
              assertScopes(req.token!, ['write']);
              send(res, { ok: true });
            },
          ],
          '/down': [requireToken(unavailable), (_req, res) => send(res, { ok: true })],
          '/miswired': [requireRole('admin'), (_req, res) => send(res, { ok: true })],
        },
        [tokenErrorHandler()],
      ),
    );
  });
  behavesPerRfc6750(() => base);

  it('does nothing once the response was sent before the token was checked (e.g. by a timeout)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const slowAccept = { verify: () => gate.then(() => verifier.verify(tokens.reader)) };
      const slowRefuse = { verify: () => gate.then((): Promise<VerifiedToken> => Promise.reject(new TokenError('invalid_token', 'no'))) };
      let handled = 0;
      const timedOut: Handler = (_req, res, next) => {
        res.writeHead(503).end();
        next();
      };
      const late = await listen(
        route(
          {
            '/accept': [timedOut, express.requireToken(slowAccept), (_req, res) => (handled++, res.setHeader('X-Late', '1').end())],
            '/refuse': [timedOut, express.requireToken(slowRefuse), (_req, res) => (handled++, res.end())],
          },
          [express.tokenErrorHandler()],
        ),
      );
      expect((await get(late, '/accept', `Bearer ${tokens.reader}`)).status).toBe(503);
      expect((await get(late, '/refuse', `Bearer ${tokens.reader}`)).status).toBe(503);
      release();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(handled).toBe(0);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('also puts the claims on res.locals when there is one (Express)', async () => {
    const req = { headers: { authorization: `Bearer ${tokens.reader}` } } as express.NodeRequestLike;
    const res = { statusCode: 200, locals: {} as Record<string, unknown>, setHeader: () => undefined, end: () => undefined };
    await new Promise<void>((resolve, reject) => express.requireToken(verifier)(req, res, (err) => (err ? reject(err as Error) : resolve())));
    expect((res.locals.token as { sub: string }).sub).toBe('user-1');
    expect(req.token?.sub).toBe('user-1');
  });
});

describe('requireRole and requireScope with nothing to require', () => {
  it('throw TypeError when the middleware is built, instead of letting every token through', () => {
    for (const build of [koa.requireRole, express.requireRole, koa.requireScope, express.requireScope]) {
      expect(() => build()).toThrow(TypeError);
      expect(() => build('')).toThrow(TypeError);
    }
    expect(() => assertRole({ roles: ['admin'] }, [])).toThrow(TypeError);
    expect(() => koa.requireRole('admin')).not.toThrow();
  });
});

describe('the error format', () => {
  it('keeps quotes and backslashes out of the quoted header values (RFC 6750 §3)', () => {
    const err = new TokenError('insufficient_scope', 'needs "x" \\ and\nmore', { scope: ['a"b'] });
    expect(err.wwwAuthenticate).toBe('Bearer error="insufficient_scope", error_description="needs ?x? ? and?more", scope="a?b"');
  });

  it('maps every precise code to status and header error', () => {
    const table = (
      [
        'missing_token',
        'invalid_request',
        'malformed_token',
        'invalid_token',
        'expired_token',
        'revoked_token',
        'insufficient_scope',
        'temporarily_unavailable',
      ] as const
    ).map((code) => {
      const err = new TokenError(code, 'd');
      return [code, err.status, err.wwwAuthenticate?.match(/error="([^"]+)"/)?.[1] ?? err.wwwAuthenticate];
    });
    expect(table).toEqual([
      ['missing_token', 401, 'Bearer'],
      ['invalid_request', 400, 'invalid_request'],
      ['malformed_token', 401, 'invalid_token'],
      ['invalid_token', 401, 'invalid_token'],
      ['expired_token', 401, 'invalid_token'],
      ['revoked_token', 401, 'invalid_token'],
      ['insufficient_scope', 403, 'insufficient_scope'],
      ['temporarily_unavailable', 503, undefined],
    ]);
  });

  it('reads only Bearer credentials from the Authorization header', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('  BEARER   abc.def-_~+/==  ')).toBe('abc.def-_~+/==');
    expect(() => bearerToken(undefined)).toThrow(expect.objectContaining({ code: 'missing_token' }));
    expect(() => bearerToken('Digest x')).toThrow(expect.objectContaining({ code: 'missing_token' }));
    // Another scheme that merely starts with "Bearer" is another scheme (RFC 7235 §2.1: the whole token).
    expect(() => bearerToken('Bearerx abc')).toThrow(expect.objectContaining({ code: 'missing_token', status: 401 }));
    expect(() => bearerToken('Bearer a=b')).toThrow(expect.objectContaining({ code: 'invalid_request', status: 400 }));
    expect(() => bearerToken(['Bearer a', 'Bearer b'])).toThrow(expect.objectContaining({ code: 'invalid_request', status: 400 }));
    expect(bearerToken(['Bearer abc'])).toBe('abc');
  });
});
