/**
 * Back-Channel Logout 1.0: ending a sign-in session POSTs a logout token to each client
 * that received tokens in it, from a durable queue, retried with backoff. A real HTTP
 * receiver fails the first delivery with a 500 and takes the retry. Then the queue's
 * contract, on memory and on a real Redis.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningServer } from '../../src/main.js';
import { createMemoryLogoutQueue } from '../../src/stores/memory/logout-queue.js';
import { closeRedis, connectRedis, createRedisClient } from '../../src/stores/redis/connection.js';
import { createRedisLogoutQueue } from '../../src/stores/redis/logout-queue.js';
import type { LogoutQueue } from '../../src/stores/types.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/tokens/id-token.js';
import { USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { FormBrowser, type PageResponse } from '../support/hosted-pages.js';
import { startRealServer, type RealServer } from '../support/real-server.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const REDIRECT = 'http://127.0.0.1:43121/callback';

describe('back-channel logout, end to end', () => {
  let real: RealServer;
  let running: RunningServer;
  let issuer: URL;
  let receiver: Server;
  const received: { status: number; at: number; body: string; type: string | undefined }[] = [];
  /** A second relying party's endpoint, which takes a logout token only once it has verified it (§2.6). */
  let verifier: Server;
  const verified: JWTPayload[] = [];
  const refused: string[] = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        // The first delivery meets an outage; the retry is taken.
        const status = received.length === 0 ? 500 : 200;
        received.push({ status, at: Date.now(), body, type: req.headers['content-type'] });
        res.writeHead(status, { 'cache-control': 'no-store' }).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    real = await startRealServer(inject('mongoUri'), 'backchannel-logout');
    ({ running, issuer } = real);
    const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', issuer));
    verifier = createServer((req, res) => {
      void validLogoutToken(req, jwks).then(
        (payload) => {
          verified.push(payload);
          res.writeHead(200, { 'cache-control': 'no-store' }).end();
        },
        (err: unknown) => {
          refused.push(String(err));
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_request' }));
        },
      );
    });
    await new Promise<void>((resolve) => verifier.listen(0, '127.0.0.1', resolve));
    const base = { type: 'public' as const, firstParty: false, audiences: [], permissions: [], cookieMode: false, secretHash: undefined };
    await running.service.stores.clients.create({
      ...base,
      clientId: 'bc-rp',
      name: 'Back-channel RP',
      grantTypes: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'email'],
      redirectUris: [REDIRECT],
      backchannelLogoutUri: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel-logout`,
    });
    // Gets ID tokens and access tokens, never a refresh token: no family to find it by.
    await running.service.stores.clients.create({
      ...base,
      clientId: 'bc-id-only',
      name: 'Back-channel RP without refresh tokens',
      grantTypes: ['authorization_code'],
      scopes: ['openid', 'email'],
      redirectUris: [REDIRECT],
      backchannelLogoutUri: `http://127.0.0.1:${(verifier.address() as AddressInfo).port}/logout`,
    });
  });

  afterAll(async () => {
    await real?.stop();
    await new Promise((resolve) => receiver?.close(resolve));
    await new Promise((resolve) => verifier?.close(resolve));
  });

  /** What a relying party checks before it acts on a logout token (Back-Channel Logout §2.6), for `bc-id-only`. */
  async function validLogoutToken(req: IncomingMessage, jwks: ReturnType<typeof createRemoteJWKSet>): Promise<JWTPayload> {
    let body = '';
    for await (const chunk of req) body += (chunk as Buffer).toString();
    if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-www-form-urlencoded') throw new Error('not a form POST');
    const token = new URLSearchParams(body).get('logout_token');
    if (!token) throw new Error('no logout_token');
    const { payload } = await jwtVerify(token, jwks, {
      issuer: issuer.origin,
      audience: 'bc-id-only',
      typ: 'logout+jwt',
      algorithms: ['RS256'],
      requiredClaims: ['iat', 'jti', 'sub', 'sid', 'events'],
    });
    const events = payload.events as Record<string, unknown> | undefined;
    if (typeof events?.[BACKCHANNEL_LOGOUT_EVENT] !== 'object') throw new Error('no back-channel logout event');
    if ('nonce' in payload) throw new Error('a logout token never carries a nonce');
    return payload;
  }

  async function signIn(clientId = 'bc-rp', browser = new FormBrowser(issuer.origin), beforeExchange = async () => {}) {
    const config = await client.discovery(issuer, clientId, undefined, client.None(), { execute: [client.allowInsecureRequests] });
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    let page: PageResponse = await browser.get(url.href);
    if (page.html.includes('name="password"')) page = await browser.submit(page, { email: USER_EMAIL, password: USER_PASSWORD });
    if (page.html.includes('name="decision"')) page = await browser.submit(page, { decision: 'allow' });
    await beforeExchange();
    const tokens = await client.authorizationCodeGrant(config, new URL(page.location!), { pkceCodeVerifier: verifier, idTokenExpected: true });
    return { config, browser, tokens };
  }

  it('POSTs a logout token (§2.4) after the session ends, and again after a 500 until the client takes it', async () => {
    const { config, browser, tokens } = await signIn();
    const idClaims = tokens.claims()!;

    const ended = Date.now();
    expect((await browser.get(client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token! }).href)).status).toBe(200);
    await expect.poll(() => received.length, { timeout: 10_000, interval: 100 }).toBeGreaterThanOrEqual(2);
    const [failed, taken] = received;
    expect(failed!.status).toBe(500);
    expect(taken!.status).toBe(200);
    // Backoff: the retry waited, and the first try did not.
    expect(failed!.at - ended).toBeLessThan(1000);
    expect(taken!.at - failed!.at).toBeGreaterThanOrEqual(900);
    expect(taken!.type).toBe('application/x-www-form-urlencoded');

    const logoutToken = new URLSearchParams(taken!.body).get('logout_token')!;
    const { payload, protectedHeader } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL('/.well-known/jwks.json', issuer)), {
      issuer: issuer.origin,
      audience: 'bc-rp',
      typ: 'logout+jwt',
    });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload).toMatchObject({ sub: idClaims.sub, sid: idClaims.sid, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } });
    expect(payload.jti).toBeTypeOf('string');
    expect(payload.iat).toBeTypeOf('number');
    expect(payload).not.toHaveProperty('nonce');
    // Each delivery is a token of its own.
    expect(decodeJwt(new URLSearchParams(failed!.body).get('logout_token')!).jti).not.toBe(payload.jti);
    // A logout token is no ID token and no access token.
    expect(decodeProtectedHeader(logoutToken).typ).not.toBe('JWT');
    const me = await fetch(new URL('/auth/me', issuer), { headers: { authorization: `Bearer ${logoutToken}` } });
    expect(me.status).toBe(401);
    // Delivered: nothing more is sent.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(received).toHaveLength(2);
  });

  it('tells the client when reuse of a refresh token ends its family', async () => {
    const before = received.length;
    const { config, tokens } = await signIn();
    const second = await client.refreshTokenGrant(config, tokens.refresh_token!);
    await client.refreshTokenGrant(config, second.refresh_token!);
    // The first token, two rotations old: reuse, whatever the grace window.
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect.poll(() => received.length, { timeout: 10_000, interval: 100 }).toBe(before + 1);
    expect(decodeJwt(new URLSearchParams(received.at(-1)!.body).get('logout_token')!)).toMatchObject({ sid: tokens.claims()!.sid, aud: 'bc-rp' });
  });

  it('tells the client too when the session ends by logout-all', async () => {
    const before = received.length;
    const { tokens } = await signIn();
    const res = await fetch(new URL('/auth/logout-all', issuer), { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(res.status).toBe(200);
    await expect.poll(() => received.length, { timeout: 10_000, interval: 100 }).toBe(before + 1);
    const token = decodeJwt(new URLSearchParams(received.at(-1)!.body).get('logout_token')!);
    expect(token).toMatchObject({ sid: tokens.claims()!.sid, sub: tokens.claims()!.sub, aud: 'bc-rp' });
  });

  it('tells a client that received only an ID token (no refresh token), and one with a family in the same session only once', async () => {
    const beforeRp = received.length;
    const idOnly = await signIn('bc-id-only');
    expect(idOnly.tokens.refresh_token).toBeUndefined();
    // The same browser signs in to bc-rp too (SSO: the same session), which holds a family as well.
    const rp = await signIn('bc-rp', idOnly.browser);
    const { sid, sub } = idOnly.tokens.claims()!;
    expect(rp.tokens.claims()!.sid).toBe(sid);

    const page = await idOnly.browser.get(client.buildEndSessionUrl(idOnly.config, { id_token_hint: idOnly.tokens.id_token! }).href);
    expect(page.status).toBe(200);
    await expect.poll(() => verified.length, { timeout: 10_000, interval: 100 }).toBe(1);
    expect(refused).toEqual([]);
    expect(verified[0]).toMatchObject({ iss: issuer.origin, aud: 'bc-id-only', sub, sid });
    await expect.poll(() => received.length, { timeout: 10_000, interval: 100 }).toBe(beforeRp + 1);
    expect(decodeJwt(new URLSearchParams(received.at(-1)!.body).get('logout_token')!)).toMatchObject({ aud: 'bc-rp', sid });
    // Once each: the session's record and bc-rp's family name it twice, one token is sent.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(verified).toHaveLength(1);
    expect(received).toHaveLength(beforeRp + 1);
  });

  it('tells the ID-token-only client when its session ends by logout-all', async () => {
    const before = verified.length;
    const { tokens } = await signIn('bc-id-only');
    const res = await fetch(new URL('/auth/logout-all', issuer), { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(res.status).toBe(200);
    await expect.poll(() => verified.length, { timeout: 10_000, interval: 100 }).toBe(before + 1);
    expect(refused).toEqual([]);
    expect(verified.at(-1)).toMatchObject({ aud: 'bc-id-only', sid: tokens.claims()!.sid, sub: tokens.claims()!.sub });
  });

  it('tells the ID-token-only client when its browser session is ended from the sessions list', async () => {
    const before = verified.length;
    const { tokens } = await signIn('bc-id-only');
    const { sid } = tokens.claims()!;
    const res = await fetch(new URL(`/auth/sessions/${String(sid)}`, issuer), {
      method: 'DELETE',
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(res.status).toBeLessThan(300);
    await expect.poll(() => verified.length, { timeout: 10_000, interval: 100 }).toBe(before + 1);
    expect(verified.at(-1)).toMatchObject({ aud: 'bc-id-only', sid });
  });

  it('tells the client at once when the session ended between the code and its exchange', async () => {
    const before = verified.length;
    const user = await running.service.stores.users.findByEmail(USER_EMAIL);
    // The store itself, so that nothing but the exchange can tell the client.
    const { tokens } = await signIn('bc-id-only', undefined, async () => {
      expect(await running.service.stores.browserSessions.deleteAllOfUser(user!.id)).toBeGreaterThan(0);
    });
    await expect.poll(() => verified.length, { timeout: 10_000, interval: 100 }).toBe(before + 1);
    expect(refused).toEqual([]);
    expect(verified.at(-1)).toMatchObject({ aud: 'bc-id-only', sid: tokens.claims()!.sid });
  });
});

describe.each([
  ['memory', async () => ({ queue: createMemoryLogoutQueue(), stop: async () => undefined })],
  [
    'redis',
    async () => {
      const redis: TestRedis = await startTestRedis();
      const connection = createRedisClient({ url: redis.url });
      await connectRedis(connection);
      return {
        queue: createRedisLogoutQueue({ redis: connection }),
        stop: async () => {
          await closeRedis(connection);
          await redis.stop();
        },
      };
    },
  ],
] as const)('LogoutQueue contract: %s', (_name, make) => {
  let queue: LogoutQueue;
  let stop: () => Promise<void>;
  beforeAll(async () => {
    ({ queue, stop } = await make());
  });
  afterAll(() => stop());

  const delivery = (id: string) => ({ id, clientId: 'rp', sid: 'sid-1', sub: 'user-1', attempt: 0 });

  it('hands out due deliveries once per lease, brings back an unsettled one when its lease ends, forgets an acked one', async () => {
    await queue.push(delivery('a'), 1000);
    await queue.push(delivery('b'), 5000);
    expect(await queue.take(999, 10, 100)).toEqual([]);
    expect(await queue.take(1000, 10, 100)).toEqual([delivery('a')]);
    expect(await queue.take(1050, 10, 100)).toEqual([]);
    expect(await queue.take(1100, 10, 100)).toEqual([delivery('a')]);
    await queue.ack('a');
    expect(await queue.take(2000, 10, 100)).toEqual([]);
    await queue.retry({ ...delivery('b'), attempt: 3 }, 6000);
    expect(await queue.take(5500, 10, 100)).toEqual([]);
    expect(await queue.take(6000, 10, 100)).toEqual([{ ...delivery('b'), attempt: 3 }]);
    await queue.ack('b');
    for (const id of ['c', 'd', 'e']) await queue.push(delivery(id), 7000);
    expect(await queue.take(7000, 2, 100)).toHaveLength(2);
    expect(await queue.take(7000, 2, 100)).toHaveLength(1);
  });
});
