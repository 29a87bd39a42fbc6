/**
 * Issue 23 items 2 and 14 for the other budgets spent before the work they guard:
 * registrations (per network; an email already taken, per network) and the requests that
 * send mail (per address, per network). A request answered 503 because a store was
 * unavailable leaves no budget spent: neither when Redis stalls (SIGSTOP) while the budget
 * is spent, nor when MongoDB stalls after it was spent.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';
import { startMongoEmulator, type MongoEmulator } from '../support/mongo-emulator/index.js';
import { waitFor } from '../support/processes.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let emulator: MongoEmulator;
let service: TestService;

beforeAll(async () => {
  redis = await startTestRedis();
  emulator = await startMongoEmulator();
  service = await startTestService({
    REDIS_URL: redis.url,
    MONGODB_URI: `${emulator.uri}/registration-budget`,
    TRUST_PROXY_HOPS: '1',
    REGISTER_IP_RATE_LIMIT: '3/1h',
    REGISTER_RATE_LIMIT: '3/1h',
    MAIL_RATE_LIMIT: '3/1h',
    MAIL_IP_RATE_LIMIT: '3/1h',
  });
}, 30_000);
afterAll(async () => {
  redis?.resume();
  emulator?.resume();
  await service?.close();
  await Promise.allSettled([redis?.stop(), emulator?.stop()]);
});

const register = (ip: string, email: string) =>
  request(service.callback).post('/auth/register').set('X-Forwarded-For', ip).send({ email, password: 'a long registration passphrase' });
const forgot = (ip: string, email: string) => request(service.callback).post('/auth/password/forgot').set('X-Forwarded-For', ip).send({ email });

const redisAnswers = () => waitFor(async () => (await redis.client.ping()) === 'PONG', 5000);
const mongoAnswers = () => waitFor(async () => (await service.stores.users.ping(), true), 10_000);

describe('budgets spent before the work, when a store stalls', () => {
  it('registrations answered 503 while Redis stalls leave no registration budget spent once it resumes', async () => {
    const ip = '203.0.113.10';
    redis.pause();
    try {
      const stalled = await Promise.all([1, 2, 3].map((n) => register(ip, `stall-redis-${n}@example.com`)));
      expect(stalled.map((response) => response.status)).toEqual([503, 503, 503]);
    } finally {
      redis.resume();
    }
    await redisAnswers();
    // Redis has now run what it was sent during the stall; the budget of 3 is whole.
    for (const n of [1, 2, 3]) expect((await register(ip, `after-redis-${n}@example.com`)).status).toBe(201);
    expect((await register(ip, 'after-redis-4@example.com')).status).toBe(429);
  }, 30_000);

  it('registrations answered 503 while MongoDB stalls leave no registration budget spent', async () => {
    const ip = '203.0.113.20';
    emulator.pause();
    try {
      const stalled = await Promise.all([1, 2, 3].map((n) => register(ip, `stall-mongo-${n}@example.com`)));
      expect(stalled.map((response) => response.status)).toEqual([503, 503, 503]);
    } finally {
      emulator.resume();
    }
    await mongoAnswers();
    for (const n of [1, 2, 3]) expect((await register(ip, `after-mongo-${n}@example.com`)).status).toBe(201);
    expect((await register(ip, 'after-mongo-4@example.com')).status).toBe(429);
  }, 40_000);

  it('mail requests answered 503 while Redis stalls leave no mail budget spent once it resumes', async () => {
    const ip = '203.0.113.30';
    redis.pause();
    try {
      const stalled = await Promise.all([1, 2, 3].map((n) => forgot(ip, `forgot-${n}@example.com`)));
      expect(stalled.map((response) => response.status)).toEqual([503, 503, 503]);
    } finally {
      redis.resume();
    }
    await redisAnswers();
    for (const n of [1, 2, 3]) expect((await forgot(ip, `forgot-after-${n}@example.com`)).status).toBe(202);
    expect((await forgot(ip, 'forgot-after-4@example.com')).status).toBe(429);
  }, 30_000);
});
