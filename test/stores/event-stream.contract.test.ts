/**
 * The event stream contract, run against the in-memory adapter (dev mode) and a real
 * redis-server: appending in order, trimming, consumer groups (new entries once, pending
 * until acknowledged, claimed by another consumer), and leases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { createMemoryEventStream } from '../../src/stores/memory/event-stream.js';
import { closeRedis, connectRedis, createRedisClient, type RedisClient } from '../../src/stores/redis/connection.js';
import { createRedisEventStream } from '../../src/stores/redis/event-stream.js';
import type { EventStreamStore } from '../../src/stores/types.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

interface Backend {
  readonly name: string;
  start(): Promise<void>;
  make(maxLen: number): EventStreamStore;
  /** Two views of one stream as two processes have them (a blocking read holds its connection). */
  pair(): [EventStreamStore, EventStreamStore];
  stop(): Promise<void>;
}

let unique = 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describeEventStreamContract(backend: Backend): void {
  describe(`EventStreamStore contract: ${backend.name}`, () => {
    beforeAll(() => backend.start());
    afterAll(() => backend.stop());

    it('appends in order and reads after an id, waiting for new entries when asked', async () => {
      const stream = backend.make(1000);
      expect(await stream.lastId()).toBe('0-0');
      const ids = [await stream.append({ n: '1' }), await stream.append({ n: '2' })];
      expect(ids[0]! < ids[1]! || ids[0]!.length < ids[1]!.length).toBe(true);
      expect(await stream.read('0', { count: 10 })).toEqual([
        { id: ids[0], fields: { n: '1' } },
        { id: ids[1], fields: { n: '2' } },
      ]);
      expect(await stream.read(ids[0]!, { count: 10 })).toEqual([{ id: ids[1], fields: { n: '2' } }]);
      expect(await stream.lastId()).toBe(ids[1]);
      expect(await stream.recent(1)).toEqual([{ id: ids[1], fields: { n: '2' } }]);
      expect((await stream.recent(5)).map((entry) => entry.id)).toEqual(ids);
      const [writer, reader] = backend.pair();
      const last = await writer.append({ n: '2b' });
      const waiting = reader.read(last, { count: 10, blockMs: 2000 });
      await sleep(50);
      const third = await writer.append({ n: '3' });
      expect(await waiting).toEqual([{ id: third, fields: { n: '3' } }]);
    });

    it('keeps about maxLen entries', async () => {
      const stream = backend.make(100);
      for (let index = 0; index < 400; index += 1) await stream.append({ n: String(index) });
      const kept = await stream.read('0', { count: 1000 });
      expect(kept.length).toBeGreaterThanOrEqual(100);
      expect(kept.length).toBeLessThan(400);
      expect(kept.at(-1)!.fields).toEqual({ n: '399' });
    });

    it('delivers each entry to one consumer of a group, pending until acknowledged, claimable by another', async () => {
      const stream = backend.make(1000);
      await stream.append({ n: 'before' });
      await stream.createGroup('g', '$');
      await stream.createGroup('g', '$'); // again: nothing
      const a = await stream.append({ n: 'a' });
      const b = await stream.append({ n: 'b' });
      expect(await stream.readGroup('g', 'one', { count: 1, pending: false })).toEqual([{ id: a, fields: { n: 'a' } }]);
      expect(await stream.readGroup('g', 'two', { count: 10, pending: false })).toEqual([{ id: b, fields: { n: 'b' } }]);
      expect(await stream.readGroup('g', 'one', { count: 10, pending: false })).toEqual([]);
      expect(await stream.readGroup('g', 'one', { count: 10, pending: true })).toEqual([{ id: a, fields: { n: 'a' } }]);
      await stream.ack('g', [a]);
      expect(await stream.readGroup('g', 'one', { count: 10, pending: true })).toEqual([]);
      // 'two' stopped without acknowledging b: 'one' claims it.
      expect(await stream.claim('g', 'one', 0)).toBe(1);
      expect(await stream.readGroup('g', 'one', { count: 10, pending: true })).toEqual([{ id: b, fields: { n: 'b' } }]);
      expect(await stream.readGroup('g', 'two', { count: 10, pending: true })).toEqual([]);
      // Only entries idle long enough are claimed.
      expect(await stream.claim('g', 'two', 60_000)).toBe(0);
    });

    it('gives a lease to one holder until it lapses or is released', async () => {
      const stream = backend.make(1000);
      expect(await stream.holdLease('l', 'a', 200)).toBe(true);
      expect(await stream.holdLease('l', 'b', 200)).toBe(false);
      expect(await stream.holdLease('l', 'a', 200)).toBe(true);
      await sleep(300);
      expect(await stream.holdLease('l', 'b', 200)).toBe(true);
      await stream.releaseLease('l', 'a'); // not a's: nothing
      expect(await stream.holdLease('l', 'a', 200)).toBe(false);
      await stream.releaseLease('l', 'b');
      expect(await stream.holdLease('l', 'a', 200)).toBe(true);
    });
  });
}

describeEventStreamContract({
  name: 'memory',
  async start() {},
  make: (maxLen) => createMemoryEventStream({ clock: systemClock, maxLen }),
  pair() {
    const stream = createMemoryEventStream({ clock: systemClock, maxLen: 1000 });
    return [stream, stream];
  },
  async stop() {},
});

let redis: TestRedis;
let client: RedisClient;
let reader: RedisClient;
describeEventStreamContract({
  name: 'redis',
  async start() {
    redis = await startTestRedis();
    client = createRedisClient({ url: redis.url, commandTimeoutMs: 5000 });
    reader = createRedisClient({ url: redis.url, commandTimeoutMs: 5000 });
    await Promise.all([connectRedis(client), connectRedis(reader)]);
  },
  make: (maxLen) => createRedisEventStream({ redis: client, key: `stream-${++unique}`, maxLen }),
  pair() {
    const key = `stream-${++unique}`;
    return [createRedisEventStream({ redis: client, key, maxLen: 1000 }), createRedisEventStream({ redis: reader, key, maxLen: 1000 })];
  },
  async stop() {
    await Promise.all([closeRedis(client), closeRedis(reader)]);
    await redis?.stop();
  },
});
