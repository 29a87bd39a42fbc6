/**
 * The mail outbox as a Redis Stream with one consumer group (`mailers`): `XADD` queues,
 * `XREADGROUP … >` hands out new messages, and a message stays in the group's pending list
 * until a worker `XACK`s it. A worker that dies mid-send leaves it pending; `XPENDING` shows
 * its idle time and delivery count, and `XCLAIM` with that idle time as the minimum hands it
 * to exactly one of the workers asking (XCLAIM re-checks the idle time atomically and
 * resets it). Both keys share the `{mail}` hash tag, so the MULTI blocks work on a Cluster.
 */
import { ReplyError } from 'ioredis';
import type { MailQueueStore, QueuedMail } from '../types.js';
import { guardRedis, pingRedis, type RedisClient } from './connection.js';

const STORE = 'mail queue';
export const MAIL_STREAM = '{mail}:queue';
export const MAIL_DEAD_STREAM = '{mail}:dead';
const GROUP = 'mailers';
/** Buried messages kept for an operator to inspect (approximate trim). */
const DEAD_MAX = 1000;

type StreamEntry = [id: string, fields: string[] | null];

export function createRedisMailQueue({ redis }: { redis: RedisClient }): MailQueueStore {
  let groupReady = false;

  async function ensureGroup(): Promise<void> {
    if (groupReady) return;
    try {
      // From 0, not $: a stream created before the group (or an XADD racing this) is not skipped.
      await redis.xgroup('CREATE', MAIL_STREAM, GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof ReplyError && (err as Error).message.startsWith('BUSYGROUP'))) throw err;
    }
    groupReady = true;
  }

  /** Runs `operation` with the group in place; a group lost with its data (a Redis that restarted empty) is made again once. */
  async function withGroup<T>(operation: () => Promise<T>): Promise<T> {
    return guardRedis(STORE, async () => {
      await ensureGroup();
      try {
        return await operation();
      } catch (err) {
        if (!(err instanceof ReplyError && (err as Error).message.startsWith('NOGROUP'))) throw err;
        groupReady = false;
        await ensureGroup();
        return operation();
      }
    });
  }

  const toMail = ([id, fields]: StreamEntry, deliveries: number): QueuedMail | undefined => {
    const at = fields?.indexOf('m') ?? -1;
    return fields && at >= 0 && fields[at + 1] !== undefined ? { id, payload: fields[at + 1]!, deliveries } : undefined;
  };

  return {
    ping: () => pingRedis(redis),

    async add(payload) {
      const id = await guardRedis(STORE, () => redis.xadd(MAIL_STREAM, '*', 'm', payload));
      return id!;
    },

    async takeNew(consumer, count) {
      const reply = (await withGroup(() => redis.xreadgroup('GROUP', GROUP, consumer, 'COUNT', count, 'STREAMS', MAIL_STREAM, '>'))) as
        [string, StreamEntry[]][] | null;
      const entries = reply?.[0]?.[1] ?? [];
      return entries.map((entry) => toMail(entry, 1)).filter((mail): mail is QueuedMail => mail !== undefined);
    },

    async takeDue(consumer, count, dueAfterMs) {
      const minIdle = dueAfterMs(1);
      const pending = (await withGroup(() => redis.xpending(MAIL_STREAM, GROUP, 'IDLE', minIdle, '-', '+', count * 4))) as [string, string, number, number][];
      const taken: QueuedMail[] = [];
      for (const [id, , idle, deliveries] of pending) {
        if (taken.length >= count) break;
        const due = dueAfterMs(deliveries);
        if (idle < due) continue;
        // XCLAIM checks the idle time again: of two workers racing, the second finds it reset.
        const claimed = (await guardRedis(STORE, () => redis.xclaim(MAIL_STREAM, GROUP, consumer, due, id))) as StreamEntry[];
        const entry = claimed[0];
        if (!entry) continue;
        const mail = toMail(entry, deliveries + 1);
        if (mail) taken.push(mail);
        // An entry deleted while pending has no fields: it was acknowledged elsewhere.
        else await guardRedis(STORE, () => redis.xack(MAIL_STREAM, GROUP, id));
      }
      return taken;
    },

    async ack(id) {
      await guardRedis(STORE, () => redis.multi().xack(MAIL_STREAM, GROUP, id).xdel(MAIL_STREAM, id).exec());
    },

    async bury(id, payload, reason) {
      await guardRedis(STORE, () =>
        redis
          .multi()
          .xadd(MAIL_DEAD_STREAM, 'MAXLEN', '~', DEAD_MAX, '*', 'm', payload, 'reason', reason, 'from', id)
          .xack(MAIL_STREAM, GROUP, id)
          .xdel(MAIL_STREAM, id)
          .exec(),
      );
    },

    size: () => guardRedis(STORE, () => redis.xlen(MAIL_STREAM)),
  };
}
