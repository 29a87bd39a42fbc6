/**
 * Security events end to end, with a real Redis and a real webhook receiver: each event
 * type is produced by the action that causes it, appears once in the stream, reaches the
 * receiver with a valid Standard Webhooks signature, and no event, entry or body holds a
 * secret used on the way.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { keyEvents } from '../../src/events/keys.js';
import { publishScriptEvents } from '../../src/events/script-events.js';
import type { EventType, SecurityEvent } from '../../src/events/types.js';
import { rotateKeys } from '../../src/keys/rotation.js';
import { cryptoRandom } from '../../src/random.js';
import { CLIENT_SECRET, startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { FormBrowser } from '../support/hosted-pages.js';
import { testDatabaseUri } from '../support/mongo.js';
import { freePort } from '../support/processes.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { eventually, newWebhookSecret, startReceiver, streamEntries, type Receiver } from './support.js';

const ROOT = join(import.meta.dirname, '..', '..');
const WEBHOOK_SECRET = newWebhookSecret();
const ALICE = { email: 'alice@example.com', password: 'her first password 1' };
const ALICE_NEW_PASSWORD = 'her second password 2';

let redis: TestRedis;
let receiver: Receiver;
let service: TestService;
let server: Server;
let origin: string;
/** Every secret the flows below handle: none may appear in an event, a stream entry, a webhook body or an event log line. */
const secrets = new Set<string>([USER_PASSWORD, CLIENT_SECRET, ALICE.password, ALICE_NEW_PASSWORD, WEBHOOK_SECRET, WEBHOOK_SECRET.slice(6), 'r'.repeat(40)]);

beforeAll(async () => {
  [redis, receiver] = await Promise.all([startTestRedis(), startReceiver(WEBHOOK_SECRET)]);
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  service = await startTestService({
    ISSUER: origin,
    REDIS_URL: redis.url,
    // A credential in the query string must not reach the log.
    WEBHOOK_URLS: `${receiver.url}?key=query-secret-0123456789`,
    WEBHOOK_SECRET,
    WEBHOOK_RETRY_BASE: '10ms',
    WEBHOOK_RETRY_MAX: '100ms',
    REFRESH_REUSE_GRACE: '0s',
    LOGIN_ACCOUNT_RATE_LIMIT: '3/1h',
  });
  server = createServer(service.callback);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
}, 30_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await service?.close();
  await Promise.all([redis?.stop(), receiver?.close()]);
});

/** The events a request caused, by its request id (flushed to the stream first). */
async function eventsOf(requestId: string): Promise<SecurityEvent[]> {
  await service.events.flush();
  return (await streamEntries(redis.client)).map((entry) => entry.event).filter((event) => event.request_id === requestId);
}

let requests = 0;
function send(method: 'get' | 'post', path: string, userAgent = 'events-test/1.0') {
  const id = `events-test-${++requests}`;
  return { id, req: request(service.callback)[method](path).set('X-Request-Id', id).set('User-Agent', userAgent) };
}

async function login(email: string, password: string, userAgent?: string) {
  const { id, req } = send('post', '/auth/login', userAgent);
  const res = await req.send({ email, password });
  for (const token of [res.body.access_token, res.body.refresh_token]) if (typeof token === 'string') secrets.add(token);
  return { id, res };
}

const typesOf = (events: SecurityEvent[]) => events.map((event) => event.type);

describe('each event type, from the action that causes it', () => {
  const seen = new Set<EventType>();
  const expectEvents = async (requestId: string, types: EventType[]) => {
    const events = await eventsOf(requestId);
    expect(typesOf(events)).toEqual(types);
    for (const event of events) {
      seen.add(event.type);
      expect(event).toMatchObject({ id: expect.any(String), time: expect.any(String), request_id: requestId });
      expect(Date.parse(event.time)).not.toBeNaN();
    }
    return events;
  };

  it('registration, logins, a lockout and throttling', async () => {
    const register = send('post', '/auth/register');
    await register.req.send(ALICE).expect(201);
    const [registered] = await expectEvents(register.id, ['user.registered']);
    expect(registered!.subject).toMatchObject({ type: 'user', email: ALICE.email });
    expect(registered!.actor).toMatchObject({ type: 'anonymous', ip: expect.any(String), user_agent: 'events-test/1.0' });

    const ok = await login(ALICE.email, ALICE.password);
    expect(ok.res.status).toBe(200);
    const [succeeded] = await expectEvents(ok.id, ['login.succeeded']);
    expect(succeeded!.actor).toMatchObject({ type: 'user', id: ok.res.body.user.id });

    const wrong = await login(ALICE.email, 'not her password at all');
    expect(wrong.res.status).toBe(400);
    const [failed] = await expectEvents(wrong.id, ['login.failed']);
    expect(failed!.data).toEqual({ reason: 'wrong_password' });

    // LOGIN_ACCOUNT_RATE_LIMIT=3/1h: the third failure spends the account's budget and locks it.
    const target = 'target@example.com';
    await expectEvents((await login(target, 'guess one')).id, ['login.failed']);
    await expectEvents((await login(target, 'guess two')).id, ['login.failed']);
    const third = await login(target, 'guess three');
    const [, locked] = await expectEvents(third.id, ['login.failed', 'account.locked']);
    expect(locked!.subject).toEqual({ type: 'user', email: target });
    const fourth = await login(target, 'guess four');
    expect(fourth.res.status).toBe(429);
    const [throttled] = await expectEvents(fourth.id, ['login.throttled']);
    expect(throttled!.data).toMatchObject({ limits: ['account'], retry_after_seconds: expect.any(Number) });
  });

  it('refresh-token reuse: the rotation and the replay, each with its user agent', async () => {
    const first = await login(ALICE.email, ALICE.password, 'first-device/1.0');
    const original = first.res.body.refresh_token as string;
    const rotate = send('post', '/auth/refresh', 'rotating-device/2.0');
    const rotated = await rotate.req.send({ refresh_token: original }).expect(200);
    secrets.add(rotated.body.access_token).add(rotated.body.refresh_token);
    await expectEvents(rotate.id, []);
    const replay = send('post', '/auth/refresh', 'replaying-device/3.0');
    await replay.req.send({ refresh_token: original }).expect(400);
    const [reuse, revoked] = await expectEvents(replay.id, ['refresh.reuse_detected', 'family.revoked']);
    const familyId = original.split('.')[0]!;
    expect(reuse!.subject).toEqual({ type: 'family', id: familyId });
    expect(reuse!.data).toMatchObject({
      family_id: familyId,
      client_id: 'demo-app',
      user_id: first.res.body.user.id,
      rotation: { user_agent: 'rotating-device/2.0', ip: expect.any(String), at: expect.any(String) },
      reuse: { user_agent: 'replaying-device/3.0', ip: expect.any(String) },
    });
    expect(revoked!.data).toMatchObject({ reason: 'reuse', count: 1 });
  });

  it('logout, token revocation, a password change and logout-all end families, each with its reason', async () => {
    const a = await login(ALICE.email, ALICE.password);
    const logout = send('post', '/auth/logout');
    await logout.req.set('Authorization', `Bearer ${a.res.body.access_token}`).expect(204);
    const [loggedOut] = await expectEvents(logout.id, ['family.revoked']);
    expect(loggedOut!.data).toMatchObject({ reason: 'logout', count: 1 });

    const b = await login(ALICE.email, ALICE.password);
    const revoke = send('post', '/oauth/revoke');
    await revoke.req.type('form').send({ token: b.res.body.refresh_token, client_id: 'demo-app' }).expect(200);
    const [revokedByClient] = await expectEvents(revoke.id, ['family.revoked']);
    expect(revokedByClient!.data).toMatchObject({ reason: 'token_revoked' });
    expect(revokedByClient!.actor).toMatchObject({ type: 'client', id: 'demo-app' });

    const c = await login(ALICE.email, ALICE.password);
    await login(ALICE.email, ALICE.password);
    const live = async (token: string) =>
      (await request(service.callback).get('/auth/sessions').set('Authorization', `Bearer ${token}`).expect(200)).body.sessions.length as number;
    const others = (await live(c.res.body.access_token)) - 1;
    expect(others).toBeGreaterThanOrEqual(1);
    const change = send('post', '/auth/password');
    await change.req
      .set('Authorization', `Bearer ${c.res.body.access_token}`)
      .send({ current_password: ALICE.password, new_password: ALICE_NEW_PASSWORD })
      .expect(200);
    const [changed, ended] = await expectEvents(change.id, ['password.changed', 'family.revoked']);
    expect(changed!.data).toMatchObject({ sessions_ended: others });
    expect(ended!.data).toMatchObject({ reason: 'password_change', count: others });

    const d = await login(ALICE.email, ALICE_NEW_PASSWORD);
    await login(ALICE.email, ALICE_NEW_PASSWORD);
    const all = send('post', '/auth/logout-all');
    await all.req.set('Authorization', `Bearer ${d.res.body.access_token}`).expect(200);
    const [allEnded] = await expectEvents(all.id, ['family.revoked']);
    expect(allEnded!.data).toMatchObject({ reason: 'logout_all', count: 3 }); // d's, the one after it, and c's own
    expect(allEnded!.subject).toMatchObject({ type: 'user', email: ALICE.email });
  });

  it('authorization granted and denied on the hosted consent page', async () => {
    const browser = new FormBrowser(origin);
    const authorize = (extra: Record<string, string> = {}) => {
      const url = new URL('/oauth/authorize', origin);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: 'demo-spa',
        redirect_uri: 'http://127.0.0.1:43117/callback',
        code_challenge: createHash('sha256').update('v'.repeat(50)).digest('base64url'),
        code_challenge_method: 'S256',
        scope: 'profile',
        state: 'xyz',
        ...extra,
      }).toString();
      return browser.get(url.href);
    };
    const loginPage = await authorize();
    const consentPage = await browser.submit(loginPage, { email: USER_EMAIL, password: USER_PASSWORD });
    expect(consentPage.status).toBe(200);
    const allowed = await browser.submit(consentPage, { decision: 'allow' });
    expect(allowed.status).toBeGreaterThanOrEqual(302);
    expect(allowed.status).toBeLessThan(400);
    secrets.add(new URL(allowed.location!).searchParams.get('code')!);
    const [granted] = await expectEvents(allowed.headers.get('x-request-id')!, ['authorization.granted']);
    expect(granted!.data).toEqual({ client_id: 'demo-spa', scope: 'profile' });

    const again = await authorize({ prompt: 'consent' });
    const denied = await browser.submit(again, { decision: 'deny' });
    expect(new URL(denied.location!).searchParams.get('error')).toBe('access_denied');
    const [refused] = await expectEvents(denied.headers.get('x-request-id')!, ['authorization.denied']);
    expect(refused!.data).toEqual({ client_id: 'demo-spa', scope: 'profile' });
  });

  it('key rotation steps, published by the rotation (as keys:rotate does)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'event-keys-'));
    try {
      const config = parseConfig({ REDIS_URL: redis.url });
      let now = Date.now();
      const rotate = async (emergencyKid?: string) => {
        const result = await rotateKeys({
          dir,
          clock: { now: () => now },
          production: false,
          jwksMaxAge: 0,
          keyPromotionMargin: 0,
          accessTokenTtl: 60,
          clockSkew: 0,
          emergencyKid,
        });
        const published = await publishScriptEvents(config, keyEvents(result, { emergencyKid }), {
          clock: { now: () => now },
          random: cryptoRandom,
          print: () => {},
        });
        for (const event of published) seen.add(event.type);
        return { result, published };
      };
      const first = await rotate();
      expect(first.published.map((event) => [event.type, event.data])).toEqual([
        ['key.created', { alg: 'RS256', state: 'active' }],
        ['key.created', { alg: 'RS256', state: 'next' }],
      ]);
      now += 1000;
      const second = await rotate();
      expect(typesOf(second.published)).toEqual(['key.promoted', 'key.retired', 'key.created']);
      now += 61_000;
      const third = await rotate();
      expect(third.published[0]).toMatchObject({ type: 'key.removed', data: { reason: 'expired' } });
      const active = third.result.after!.find((key) => key.state === 'active')!.kid;
      const next = third.result.after!.find((key) => key.state === 'next')!.kid;
      const emergency = await rotate(active);
      expect(emergency.published.map((event) => [event.type, event.subject.id])).toEqual([
        ['key.removed', active],
        ['key.promoted', next],
        ['key.created', expect.any(String)],
        ['key.emergency_rotated', active],
      ]);
      expect(emergency.published.at(-1)!.data).toEqual({ successor: next });
      const inStream = (await streamEntries(redis.client)).filter((entry) => entry.event.type.startsWith('key.'));
      expect(inStream).toHaveLength(first.published.length + second.published.length + third.published.length + emergency.published.length);
      for (const file of readdirSync(dir).filter((name) => name.endsWith('.json') && name !== 'keyring.json')) {
        const jwk = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, string>;
        for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) if (jwk[member]) secrets.add(jwk[member]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('client:create, as a process of its own, appends client.created to the same stream', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'client-create.ts'), '--name', 'Events API', '--id', 'events-api'], {
      env: { PATH: process.env.PATH, MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'events-client-create'), REDIS_URL: redis.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const clientSecret = /client_secret=(\S+)/.exec(stdout)![1]!;
    secrets.add(clientSecret).add(createHash('sha256').update(clientSecret).digest('hex'));
    const created = (await streamEntries(redis.client)).map((entry) => entry.event).filter((event) => event.type === 'client.created');
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({
      actor: { type: 'operator', id: 'client:create' },
      subject: { type: 'client', id: 'events-api' },
      request_id: null,
      data: { name: 'Events API', client_type: 'confidential', grant_types: ['client_credentials'] },
    });
    seen.add('client.created');
  }, 60_000);

  it('covered every type but user.disabled and admin.action (test/admin/endpoints.test.ts produces and checks those)', () => {
    expect([...seen].sort()).toEqual(
      [
        'user.registered',
        'login.succeeded',
        'login.failed',
        'login.throttled',
        'account.locked',
        'refresh.reuse_detected',
        'family.revoked',
        'password.changed',
        'authorization.granted',
        'authorization.denied',
        'key.created',
        'key.promoted',
        'key.retired',
        'key.removed',
        'key.emergency_rotated',
        'client.created',
      ].sort(),
    );
  });
});

describe('delivery and secrecy', () => {
  it('every event in the stream reached the webhook once or more, signed, as the same JSON', async () => {
    await service.events.flush();
    const entries = await streamEntries(redis.client);
    await eventually(() => entries.every((entry) => receiver.accepted().some((event) => event.id === entry.event.id)));
    for (const delivery of receiver.deliveries) {
      expect(delivery.event, 'the signature verifies').toBeDefined();
      expect(delivery.headers['webhook-id']).toBe(delivery.event!.id);
    }
    const byId = new Map(entries.map((entry) => [entry.event.id, entry.event]));
    for (const event of receiver.accepted()) expect(event).toEqual(byId.get(event.id));
  });

  it('no event, stream entry, webhook body or event log line holds a secret used above', async () => {
    const entries = await streamEntries(redis.client);
    const logLines = service.logs.lines.filter((line) => line.includes('"event":'));
    expect(service.logs.text()).not.toContain('query-secret-0123456789');
    const haystacks = [...entries.map((entry) => entry.raw), ...receiver.deliveries.map((delivery) => delivery.body), ...logLines];
    expect(entries.length).toBeGreaterThan(30);
    expect(secrets.size).toBeGreaterThan(20);
    for (const secret of secrets) {
      for (const text of haystacks) expect(text.includes(secret), `a secret (${secret.slice(0, 4)}…) in ${text.slice(0, 120)}`).toBe(false);
    }
    // And each was logged at info with `event: <type>`.
    const logged = service.logs.entries().filter((entry) => typeof entry.event === 'string');
    for (const { event } of entries)
      expect(logged.filter((entry) => entry.event_id === event.id && entry.event === event.type && entry.level === 'info')).toHaveLength(
        event.request_id === null ? 0 : 1,
      );
  });
});
