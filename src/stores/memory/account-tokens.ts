import type { Clock } from '../../clock.js';
import type { AccountTokenRecord, AccountTokenStore } from '../types.js';

/** Account tokens in process memory (dev): one record per purpose and user; each call runs without awaiting. */
export function createMemoryAccountTokenStore({ clock }: { clock: Clock }): AccountTokenStore {
  const records = new Map<string, { record: AccountTokenRecord; until: number }>();
  const key = (purpose: string, userId: string) => `${purpose}\u0000${userId}`;
  const live = (k: string) => {
    const entry = records.get(k);
    if (entry && entry.until <= clock.now()) records.delete(k);
    return records.get(k);
  };
  return {
    async put(purpose, userId, record, ttlMs) {
      records.set(key(purpose, userId), { record: { ...record }, until: clock.now() + ttlMs });
    },
    async get(purpose, userId) {
      const entry = live(key(purpose, userId));
      return entry ? { ...entry.record } : null;
    },
    async take(purpose, userId, hash) {
      const k = key(purpose, userId);
      if (live(k)?.record.hash !== hash) return false;
      records.delete(k);
      return true;
    },
  };
}
