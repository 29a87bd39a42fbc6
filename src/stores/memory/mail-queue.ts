/**
 * The mail outbox in process memory, for the embedded dev mode: the same hand-out rules as
 * the Redis Stream (new, then due again after `dueAfterMs(deliveries)` of idling), lost
 * with the process like every embedded store.
 */
import type { Clock } from '../../clock.js';
import type { MailQueueStore, QueuedMail } from '../types.js';

interface Entry {
  readonly id: string;
  readonly payload: string;
  deliveries: number;
  /** When it was last handed out; undefined = never. */
  takenAt: number | undefined;
}

const DEAD_MAX = 1000;

export function createMemoryMailQueue({ clock }: { clock: Clock }): MailQueueStore & { readonly dead: readonly { payload: string; reason: string }[] } {
  const entries = new Map<string, Entry>();
  const dead: { payload: string; reason: string }[] = [];
  let sequence = 0;
  const view = (entry: Entry): QueuedMail => ({ id: entry.id, payload: entry.payload, deliveries: entry.deliveries });

  function take(entry: Entry): QueuedMail {
    entry.deliveries += 1;
    entry.takenAt = clock.now();
    return view(entry);
  }

  return {
    dead,
    async ping() {},
    async add(payload) {
      sequence += 1;
      const id = `${clock.now()}-${sequence}`;
      entries.set(id, { id, payload, deliveries: 0, takenAt: undefined });
      return id;
    },
    async takeNew(_consumer, count) {
      return [...entries.values()]
        .filter((entry) => entry.takenAt === undefined)
        .slice(0, count)
        .map(take);
    },
    async takeDue(_consumer, count, dueAfterMs) {
      const now = clock.now();
      return [...entries.values()]
        .filter((entry) => entry.takenAt !== undefined && now - entry.takenAt >= dueAfterMs(entry.deliveries))
        .slice(0, count)
        .map(take);
    },
    async ack(id) {
      entries.delete(id);
    },
    async bury(id, payload, reason) {
      entries.delete(id);
      dead.push({ payload, reason });
      if (dead.length > DEAD_MAX) dead.shift();
    },
    async size() {
      return entries.size;
    },
  };
}
