/**
 * An event stream in Redis: a Stream at `key` (XADD with `MAXLEN ~ maxLen`, so trimming
 * is cheap and the length stays near `maxLen`), its consumer groups (XREADGROUP, XACK,
 * XAUTOCLAIM) and leases as plain keys `<key>:lease:<name>` (SET PX, renewed and released
 * by scripts that check the holder). Under Redis Cluster the stream is one key, so one slot;
 * each lease is its own key, never used with the stream in one command.
 */
import type { EventStreamStore, StreamEntry } from '../types.js';
import { defineScript, guardRedis, pingRedis, runScript, type RedisClient } from './connection.js';

const STORE = 'event stream';

/** KEYS: lease. ARGV: holder, ttl ms. Takes a free lease or renews one's own; 1 when held. */
const HOLD = defineScript(`
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`);

/** KEYS: lease. ARGV: holder. */
const RELEASE = defineScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`);

export interface RedisEventStreamOptions {
  readonly redis: RedisClient;
  /** The stream's key. */
  readonly key: string;
  /** Entries kept (about: MAXLEN ~). */
  readonly maxLen: number;
}

type RawEntry = [string, string[] | null];

function toEntry([id, flat]: RawEntry): StreamEntry | { id: string; fields: null } {
  if (!flat) return { id, fields: null };
  const fields: Record<string, string> = {};
  for (let index = 0; index + 1 < flat.length; index += 2) fields[flat[index]!] = flat[index + 1]!;
  return { id, fields };
}

/** XREAD / XREADGROUP reply → the entries of our one stream. */
function entriesOf(reply: unknown): (StreamEntry | { id: string; fields: null })[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const [, raw] = reply[0] as [string, RawEntry[]];
  return raw.map(toEntry);
}

export function createRedisEventStream({ redis, key, maxLen }: RedisEventStreamOptions): EventStreamStore {
  const guard = <T>(operation: () => Promise<T>) => guardRedis(STORE, operation);
  const leaseKey = (name: string) => `${key}:lease:${name}`;

  return {
    ping: () => pingRedis(redis),

    async append(fields) {
      const flat = Object.entries(fields).flat();
      const id = await guard(() => redis.xadd(key, 'MAXLEN', '~', String(maxLen), '*', ...flat));
      return id!;
    },

    async read(after, { count, blockMs }) {
      const reply =
        blockMs === undefined
          ? await guard(() => redis.xread('COUNT', count, 'STREAMS', key, after))
          : await guard(() => redis.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', key, after));
      return entriesOf(reply).filter((entry): entry is StreamEntry => entry.fields !== null);
    },

    async recent(count) {
      if (count <= 0) return [];
      const reply = (await guard(() => redis.xrevrange(key, '+', '-', 'COUNT', count))) as RawEntry[];
      return reply
        .map(toEntry)
        .filter((entry): entry is StreamEntry => entry.fields !== null)
        .reverse();
    },

    async lastId() {
      const reply = (await guard(() => redis.xrevrange(key, '+', '-', 'COUNT', 1))) as RawEntry[];
      return reply[0]?.[0] ?? '0-0';
    },

    async createGroup(group, start) {
      try {
        await guard(() => redis.xgroup('CREATE', key, group, start, 'MKSTREAM'));
      } catch (err) {
        if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
      }
    },

    async readGroup(group, consumer, { count, pending }) {
      const reply = await guard(() => redis.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'STREAMS', key, pending ? '0' : '>'));
      return entriesOf(reply);
    },

    async ack(group, ids) {
      if (ids.length > 0) await guard(() => redis.xack(key, group, ...ids));
    },

    async claim(group, consumer, minIdleMs) {
      let cursor = '0-0';
      let claimed = 0;
      do {
        const reply = (await guard(() => redis.xautoclaim(key, group, consumer, minIdleMs, cursor, 'COUNT', 100, 'JUSTID'))) as [string, string[]];
        cursor = reply[0];
        claimed += reply[1].length;
      } while (cursor !== '0-0');
      return claimed;
    },

    async holdLease(name, holder, ttlMs) {
      return (await guard(() => runScript(redis, HOLD, [leaseKey(name)], [holder, Math.max(1, Math.round(ttlMs))]))) === 1;
    },

    async releaseLease(name, holder) {
      await guard(() => runScript(redis, RELEASE, [leaseKey(name)], [holder]));
    },
  };
}
