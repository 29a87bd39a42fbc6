/**
 * Webhook delivery from the stream, against a real Redis and a real receiver that checks
 * every signature with the standardwebhooks library: a receiver that fails five times then
 * recovers gets every event, in order per subject; an instance that stops mid-delivery
 * loses nothing, because another takes over its pending entries.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { stampEvent, toStreamFields } from '../../src/events/emitter.js';
import { SECURITY_EVENTS_STREAM, orderingKey, type NewEvent, type SecurityEvent } from '../../src/events/types.js';
import { backoff, createWebhookDelivery, groupName, type WebhookDelivery } from '../../src/events/webhooks.js';
import request from 'supertest';
import { startTestService, USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { captureLogs } from '../support/logs.js';
import { cryptoRandom } from '../../src/random.js';
import { connectRedis, createRedisClient, closeRedis, type RedisClient } from '../../src/stores/redis/connection.js';
import { createRedisEventStream } from '../../src/stores/redis/event-stream.js';
import type { EventStreamStore } from '../../src/stores/types.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { eventually, newWebhookSecret, startReceiver, type Receiver } from './support.js';

const SECRET = newWebhookSecret();
let redis: TestRedis;
let client: RedisClient;
let stream: EventStreamStore;
let receiver: Receiver;
const running: WebhookDelivery[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  client = createRedisClient({ url: redis.url });
  await connectRedis(client);
  stream = createRedisEventStream({ redis: client, key: SECURITY_EVENTS_STREAM, maxLen: 10_000 });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((delivery) => delivery.stop()));
  await receiver?.close();
  await redis.flush();
});
afterAll(async () => {
  await closeRedis(client);
  await redis?.stop();
});

function deliverer(consumer: string, extra: { leaseMs?: number; logs?: ReturnType<typeof captureLogs> } = {}): WebhookDelivery {
  const { logs = captureLogs(), ...options } = extra;
  const delivery = createWebhookDelivery({
    urls: [receiver.url],
    secret: SECRET,
    stream,
    logger: logs.logger,
    consumer,
    timeoutMs: 5000,
    retryBaseMs: 5,
    retryMaxMs: 40,
    pollMs: 20,
    batchSize: 8,
    ...options,
  });
  running.push(delivery);
  return delivery;
}

/** Appends `count` events spread over three subjects, as the server would; resolves them in stream order. */
async function appendEvents(count: number): Promise<SecurityEvent[]> {
  const events: SecurityEvent[] = [];
  for (let index = 0; index < count; index += 1) {
    const email = `user${index % 3}@example.com`;
    const event: NewEvent = {
      type: 'login.failed',
      actor: { type: 'anonymous', ip: '192.0.2.1' },
      subject: { type: 'user', email },
      data: { reason: 'wrong_password' },
    };
    const stamped = stampEvent(event, { clock: systemClock, random: cryptoRandom });
    await stream.append(toStreamFields(stamped));
    events.push(stamped);
  }
  return events;
}

/** The first accepted delivery of each event, grouped by subject, in the order they were accepted. */
function acceptedBySubject(): Map<string, string[]> {
  const bySubject = new Map<string, string[]>();
  const seen = new Set<string>();
  for (const event of receiver.accepted()) {
    if (seen.has(event.id)) continue;
    seen.add(event.id);
    const key = orderingKey(event.subject);
    bySubject.set(key, [...(bySubject.get(key) ?? []), event.id]);
  }
  return bySubject;
}

async function pendingCount(): Promise<number> {
  const [count] = (await client.xpending(SECURITY_EVENTS_STREAM, groupName(receiver.url))) as [number];
  return count;
}

function expectedBySubject(events: SecurityEvent[]): Map<string, string[]> {
  const bySubject = new Map<string, string[]>();
  for (const event of events) bySubject.set(orderingKey(event.subject), [...(bySubject.get(orderingKey(event.subject)) ?? []), event.id]);
  return bySubject;
}

describe('webhook delivery', () => {
  it('retries a receiver that fails five times, then delivers every event, in order per subject, each signed', async () => {
    receiver = await startReceiver(SECRET);
    receiver.failNext(5);
    const delivery = deliverer('instance-a');
    await delivery.start();
    const events = await appendEvents(24);
    delivery.notify();
    await eventually(() => new Set(receiver.accepted().map((event) => event.id)).size === events.length);
    expect(receiver.deliveries.filter((d) => d.status === 503)).toHaveLength(5);
    expect(receiver.deliveries.every((d) => d.event !== undefined)).toBe(true);
    expect(acceptedBySubject()).toEqual(expectedBySubject(events));
    // Acknowledged (just after each 2xx): nothing is left pending in the group.
    await eventually(async () => (await pendingCount()) === 0);
  });

  it('an instance that stops mid-delivery loses nothing: another takes over its pending entries', async () => {
    receiver = await startReceiver(SECRET);
    receiver.hang();
    const first = deliverer('instance-a', { leaseMs: 300 });
    await first.start();
    const events = await appendEvents(12);
    first.notify();
    // A's first batch is pending for A, a request of it held by the receiver.
    await eventually(async () => (await pendingCount()) > 0);
    await first.stop({ release: false }); // as a crash: the lease is left to lapse
    const logs = captureLogs();
    const second = deliverer('instance-b', { leaseMs: 300, logs });
    await second.start();
    receiver.release();
    await eventually(() => events.every((event) => receiver.accepted().some((accepted) => accepted.id === event.id)), 15_000);
    // B delivered A's batch itself: it claimed the entries A had read and never acknowledged.
    const takeover = logs.entries().find((entry) => entry.msg === 'webhook delivery: took over entries another instance left pending');
    expect(takeover?.claimed).toBeGreaterThan(0);
    await eventually(async () => (await pendingCount()) === 0);
    expect(acceptedBySubject()).toEqual(expectedBySubject(events));
  });

  it('rides out a Redis outage: one warning, then delivery resumes (the group is made again on a fresh Redis)', async () => {
    receiver = await startReceiver(SECRET);
    const logs = captureLogs();
    const delivery = deliverer('instance-a', { logs });
    await delivery.start();
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 400));
    await redis.restart();
    await eventually(
      async () =>
        await stream
          .ping()
          .then(() => true)
          .catch(() => false),
      10_000,
    );
    // Appended before the deliverer noticed: its group, made again, starts from the new stream's beginning.
    const [event] = await appendEvents(1);
    await eventually(() => receiver.accepted().some((accepted) => accepted.id === event!.id), 15_000);
    const warnings = logs.entries().filter((entry) => entry.msg === 'webhook delivery: event stream unavailable; retrying');
    expect(warnings).toHaveLength(1);
    await eventually(() => logs.entries().some((entry) => entry.msg === 'webhook delivery: event stream available again'));
  }, 30_000);

  it('backs off exponentially, with jitter, up to the maximum', () => {
    expect([1, 2, 3, 4, 10].map((attempt) => backoff(attempt, 1000, 300_000, 0.5))).toEqual([1000, 2000, 4000, 8000, 300_000]);
    expect(backoff(3, 1000, 300_000, 0)).toBe(3200);
    expect(backoff(3, 1000, 300_000, 1)).toBe(4800);
  });
});

describe('dev mode, without Redis', () => {
  it('delivers from the in-memory stream', async () => {
    receiver = await startReceiver(SECRET);
    const service = await startTestService({ WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_BASE: '10ms' });
    try {
      await request(service.callback).post('/auth/login').send({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200);
      await eventually(() => receiver.accepted().some((event) => event.type === 'login.succeeded'));
      expect(receiver.accepted()[0]).toMatchObject({ type: 'login.succeeded', subject: { type: 'user', email: USER_EMAIL } });
    } finally {
      await service.close();
    }
  });
});
