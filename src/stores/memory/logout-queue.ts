/** Back-channel logout deliveries in process memory (dev mode): lost on restart, like every embedded store. */
import type { LogoutDelivery, LogoutQueue } from '../types.js';

export function createMemoryLogoutQueue(): LogoutQueue {
  const entries = new Map<string, { delivery: LogoutDelivery; dueAt: number }>();
  return {
    async ping() {},
    async push(delivery, dueAt) {
      entries.set(delivery.id, { delivery: Object.freeze({ ...delivery }), dueAt });
    },
    async take(now, limit, leaseMs) {
      const due = [...entries.values()].filter((entry) => entry.dueAt <= now).sort((a, b) => a.dueAt - b.dueAt);
      return due.slice(0, limit).map((entry) => {
        entry.dueAt = now + leaseMs;
        return entry.delivery;
      });
    },
    async ack(id) {
      entries.delete(id);
    },
    async retry(delivery, dueAt) {
      entries.set(delivery.id, { delivery: Object.freeze({ ...delivery }), dueAt });
    },
  };
}
