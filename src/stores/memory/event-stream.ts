/**
 * An in-process event stream (the embedded dev default), with the semantics of the Redis
 * one: ids `<ms>-<seq>` in order, exact trimming to `maxLen`, consumer groups with pending
 * entries per consumer, and leases. One process, so a lease is only ever contended by
 * deliverers within it.
 */
import type { Clock } from '../../clock.js';
import type { EventStreamStore, StreamEntry } from '../types.js';

interface Group {
  /** Sequence number of the last entry delivered to the group. */
  delivered: number;
  /** Entry id → consumer and when it was delivered or claimed. */
  readonly pending: Map<string, { consumer: string; since: number }>;
}

const parseId = (id: string): [number, number] => {
  const [ms = '0', seq = '0'] = id.split('-');
  return [Number(ms), Number(seq)];
};
const after = (a: string, b: string): boolean => {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  return am > bm || (am === bm && as > bs);
};

export function createMemoryEventStream({ clock, maxLen }: { clock: Clock; maxLen: number }): EventStreamStore {
  const entries: (StreamEntry & { n: number })[] = [];
  const groups = new Map<string, Group>();
  const leases = new Map<string, { holder: string; until: number }>();
  const waiters = new Set<() => void>();
  let lastMs = 0;
  let seq = 0;
  let count = 0;

  const nextId = (): string => {
    const now = Math.max(clock.now(), lastMs);
    seq = now === lastMs ? seq + 1 : 0;
    lastMs = now;
    return `${now}-${seq}`;
  };
  const lastId = () => entries.at(-1)?.id ?? '0-0';
  const byId = (id: string) => entries.find((entry) => entry.id === id);

  function readAfter(from: string, limit: number): StreamEntry[] {
    return entries.filter((entry) => after(entry.id, from)).slice(0, limit);
  }

  return {
    async ping() {},

    async append(fields) {
      const id = nextId();
      count += 1;
      entries.push({ id, fields: Object.freeze({ ...fields }), n: count });
      if (entries.length > maxLen) entries.splice(0, entries.length - maxLen);
      for (const wake of waiters) wake();
      return id;
    },

    async read(from, { count: limit, blockMs }) {
      const start = from === '$' ? lastId() : from;
      let found = readAfter(start, limit);
      if (found.length === 0 && blockMs !== undefined) {
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(wake, blockMs);
          waiters.add(wake);
        });
        found = readAfter(start, limit);
      }
      return found.map(({ id, fields }) => ({ id, fields }));
    },

    async recent(limit) {
      return limit <= 0 ? [] : entries.slice(-limit).map(({ id, fields }) => ({ id, fields }));
    },

    async lastId() {
      return lastId();
    },

    async createGroup(group, start) {
      if (groups.has(group)) return;
      groups.set(group, { delivered: start === '$' ? count : 0, pending: new Map() });
    },

    async readGroup(name, consumer, { count: limit, pending }) {
      const group = groups.get(name);
      if (!group) throw new Error(`NOGROUP no such consumer group ${name}`);
      if (pending) {
        const mine = [...group.pending].filter(([, owner]) => owner.consumer === consumer).map(([id]) => id);
        return mine
          .sort((a, b) => (after(a, b) ? 1 : -1))
          .slice(0, limit)
          .map((id) => ({ id, fields: byId(id)?.fields ?? null }));
      }
      const fresh = entries.filter((entry) => entry.n > group.delivered).slice(0, limit);
      const now = clock.now();
      for (const entry of fresh) group.pending.set(entry.id, { consumer, since: now });
      if (fresh.length > 0) group.delivered = fresh.at(-1)!.n;
      return fresh.map(({ id, fields }) => ({ id, fields }));
    },

    async ack(name, ids) {
      const group = groups.get(name);
      for (const id of ids) group?.pending.delete(id);
    },

    async claim(name, consumer, minIdleMs) {
      const group = groups.get(name);
      if (!group) throw new Error(`NOGROUP no such consumer group ${name}`);
      const now = clock.now();
      let claimed = 0;
      for (const [id, owner] of group.pending) {
        if (now - owner.since < minIdleMs) continue;
        // Like XAUTOCLAIM: an entry trimmed away is dropped from the pending list.
        if (!byId(id)) group.pending.delete(id);
        else {
          group.pending.set(id, { consumer, since: now });
          claimed += 1;
        }
      }
      return claimed;
    },

    async holdLease(name, holder, ttlMs) {
      const now = clock.now();
      const lease = leases.get(name);
      if (lease && lease.holder !== holder && now < lease.until) return false;
      leases.set(name, { holder, until: now + ttlMs });
      return true;
    },

    async releaseLease(name, holder) {
      if (leases.get(name)?.holder === holder) leases.delete(name);
    },
  };
}
