/**
 * The login's throttle budgets against a real Redis (issue 18 item 5, issue 23 items 2,
 * 13 and 14): a successful login costs at most 4 Redis round trips; concurrent right
 * passwords, even on two instances, are not refused; concurrent wrong ones cannot slip
 * past the budget; and logins answered 503 because Redis stalled (SIGSTOP, then SIGCONT)
 * leave no budget spent, and so do logins answered 503 while MongoDB stalls (the emulator
 * holding every request).
 */
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { passwordLogin } from '../support/http.js';
import { waitFor } from '../support/processes.js';
import { startMongoEmulator, type MongoEmulator } from '../support/mongo-emulator/index.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { isBackground } from '../support/redis-monitor.js';

let redis: TestRedis;
let a: TestService;
let b: TestService;

beforeAll(async () => {
  redis = await startTestRedis();
  // Two instances sharing Redis; each seeds the same demo user with the same password.
  a = await startTestService({
    REDIS_URL: redis.url,
    LOGIN_RATE_LIMIT: '5/15m',
    LOGIN_IP_RATE_LIMIT: '100/15m',
    LOGIN_ACCOUNT_RATE_LIMIT: '100/15m',
    TRUST_PROXY_HOPS: '1',
  });
  b = await startTestService({
    REDIS_URL: redis.url,
    LOGIN_RATE_LIMIT: '5/15m',
    LOGIN_IP_RATE_LIMIT: '100/15m',
    LOGIN_ACCOUNT_RATE_LIMIT: '100/15m',
    TRUST_PROXY_HOPS: '1',
  });
}, 30_000);
afterAll(async () => {
  redis?.resume();
  await Promise.allSettled([a?.close(), b?.close()]);
  await redis?.stop();
});

const login = (service: TestService, password = USER_PASSWORD, ip = '198.51.100.7') =>
  request(service.callback)
    .post('/oauth/token')
    .set('X-Forwarded-For', ip)
    .type('form')
    .send({ grant_type: 'password', client_id: 'demo-app', username: USER_EMAIL, password });

describe('login budgets on Redis', () => {
  it('a successful login takes at most 4 Redis round trips', async () => {
    expect((await passwordLogin(a)).status).toBe(200);
    const monitor = await new Redis(redis.url).monitor();
    const commands: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      // Background workers poll Redis on their own, whatever the login does; the security
      // event the login emits (XADD events:security) counts.
      if (!isBackground(args, source)) commands.push(args[0]!.toLowerCase());
    });
    expect((await passwordLogin(a)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    monitor.disconnect();
    expect(commands.length, commands.join(' ')).toBeLessThanOrEqual(4);
  });

  it('concurrent right passwords from one address, split over two instances, are all admitted', async () => {
    const responses = await Promise.all(Array.from({ length: 10 }, (_, index) => login(index % 2 ? a : b, USER_PASSWORD, '198.51.100.13')));
    expect(responses.map((response) => response.status)).toEqual(Array(10).fill(200));
  });

  it('40 concurrent wrong passwords over two instances: at most the budget (5) reach the password check', async () => {
    const responses = await Promise.all(Array.from({ length: 40 }, (_, index) => login(index % 2 ? a : b, 'wrong password!', '198.51.100.21')));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 400).length).toBeLessThanOrEqual(5);
    expect(statuses.filter((status) => status !== 400 && status !== 429)).toEqual([]);
  });

  it('logins answered 503 while Redis stalls leave no budget spent once it resumes', async () => {
    const ip = '198.51.100.33';
    redis.pause();
    try {
      const stalled = await Promise.all(Array.from({ length: 6 }, () => login(a, USER_PASSWORD, ip)));
      expect(stalled.map((response) => response.status)).toEqual(Array(6).fill(503));
    } finally {
      redis.resume();
    }
    // Redis now runs what it was sent during the stall; the right password is not refused.
    await waitFor(async () => (await redis.client.ping()) === 'PONG', 5000);
    const after = await login(a, USER_PASSWORD, ip);
    expect(after.status, JSON.stringify(after.body)).toBe(200);
  }, 20_000);
});

describe('login budgets when MongoDB stalls', () => {
  let emulator: MongoEmulator;
  let service: TestService;
  beforeAll(async () => {
    emulator = await startMongoEmulator();
    service = await startTestService({ REDIS_URL: redis.url, MONGODB_URI: `${emulator.uri}/stall`, LOGIN_RATE_LIMIT: '5/15m', TRUST_PROXY_HOPS: '1' });
  }, 30_000);
  afterAll(async () => {
    emulator?.resume();
    await service?.close();
    await emulator?.stop();
  });

  it('logins answered 503 while the user store stalls leave no budget spent', async () => {
    const ip = '198.51.100.44';
    // The client record is cached by now (CLIENT_CACHE_TTL): what stalls is the user lookup.
    expect((await login(service, USER_PASSWORD, '198.51.100.45')).status).toBe(200);
    emulator.pause();
    try {
      const started = Date.now();
      const stalled = await Promise.all(Array.from({ length: 5 }, () => login(service, USER_PASSWORD, ip)));
      expect(stalled.map((response) => response.status)).toEqual(Array(5).fill(503));
      // The lookup's own deadline (2 s), not the driver's socket timeout, retry and server selection (20 s).
      expect(Date.now() - started).toBeLessThan(8_000);
    } finally {
      emulator.resume();
    }
    await waitFor(async () => (await service.stores.users.ping(), true), 10_000);
    const after = await login(service, USER_PASSWORD, ip);
    expect(after.status, JSON.stringify(after.body)).toBe(200);
  }, 30_000);

  it('a refresh whose user read fails after the rotation is 503; its retry within the grace window gets the successor', async () => {
    const signedIn = await login(service, USER_PASSWORD, '198.51.100.46');
    expect(signedIn.status).toBe(200);
    const refresh = (token: string) =>
      request(service.callback).post('/oauth/token').type('form').send({ grant_type: 'refresh_token', client_id: 'demo-app', refresh_token: token });
    // Nothing has refreshed for this user on this instance yet: the user is not cached.
    emulator.pause();
    try {
      expect((await refresh(signedIn.body.refresh_token)).status).toBe(503);
    } finally {
      emulator.resume();
    }
    await waitFor(async () => (await service.stores.users.ping(), true), 10_000);
    const retried = await refresh(signedIn.body.refresh_token);
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect((await refresh(retried.body.refresh_token)).status).toBe(200);
  }, 30_000);
});
