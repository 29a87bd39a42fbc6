/**
 * MailQueueStore contract, in process and on a real Redis Stream: new messages are handed out
 * once; a taken message comes back only after its backoff and then to one taker only; ack
 * removes it; bury moves it out.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createMemoryMailQueue } from '../../src/stores/memory/mail-queue.js';
import { createRedisMailQueue, MAIL_DEAD_STREAM } from '../../src/stores/redis/mail-queue.js';
import type { MailQueueStore } from '../../src/stores/types.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const DUE_MS = 100;
const due = () => DUE_MS;

function contract(name: string, make: () => Promise<{ queue: MailQueueStore; wait: (ms: number) => Promise<void>; dead: () => Promise<number> }>) {
  describe(`MailQueueStore contract: ${name}`, () => {
    let queue: MailQueueStore;
    let wait: (ms: number) => Promise<void>;
    let dead: () => Promise<number>;
    beforeEach(async () => {
      ({ queue, wait, dead } = await make());
    });

    it('hands a new message out once, and again only after its backoff, with the count of deliveries', async () => {
      const id = await queue.add('payload-1');
      const [first] = await queue.takeNew('a', 10);
      expect(first).toEqual({ id, payload: 'payload-1', deliveries: 1 });
      expect(await queue.takeNew('b', 10)).toEqual([]);
      expect(await queue.takeDue('b', 10, due)).toEqual([]);
      await wait(DUE_MS + 20);
      const [again] = await queue.takeDue('b', 10, due);
      expect(again).toEqual({ id, payload: 'payload-1', deliveries: 2 });
      expect(await queue.takeDue('c', 10, due)).toEqual([]);
      expect(await queue.size()).toBe(1);
    });

    it('gives a due message to one of several concurrent takers', async () => {
      await queue.add('payload-2');
      await queue.takeNew('a', 10);
      await wait(DUE_MS + 20);
      const results = await Promise.all(['b', 'c', 'd', 'e'].map((consumer) => queue.takeDue(consumer, 10, due)));
      expect(results.flat()).toHaveLength(1);
    });

    it('ack removes a message for good; bury moves it to the dead letters', async () => {
      const kept = await queue.add('keep');
      const gone = await queue.add('bury');
      await queue.takeNew('a', 10);
      await queue.ack(kept);
      await queue.bury(gone, 'bury', 'smtp said no');
      expect(await queue.size()).toBe(0);
      expect(await dead()).toBe(1);
      await wait(DUE_MS + 20);
      expect(await queue.takeDue('a', 10, due)).toEqual([]);
    });
  });
}

contract('memory', async () => {
  const clock = manualClock();
  const queue = createMemoryMailQueue({ clock });
  return { queue, wait: async (ms) => clock.advance(ms), dead: async () => queue.dead.length };
});

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});
contract('redis', async () => {
  await redis.flush();
  return {
    queue: createRedisMailQueue({ redis: redis.client }),
    wait: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    dead: () => redis.client.xlen(MAIL_DEAD_STREAM),
  };
});
