import type { Clock } from '../../clock.js';
import type { ConsentRecord, ConsentStore } from '../types.js';

/** Consents in process memory, for the embedded dev mode; each method is one synchronous step. */
export function createMemoryConsentStore({ clock }: { clock: Clock }): ConsentStore {
  const byKey = new Map<string, ConsentRecord>();
  const key = (userId: string, clientId: string) => JSON.stringify([userId, clientId]);
  const copy = (record: ConsentRecord): ConsentRecord => ({
    ...record,
    scopes: [...record.scopes],
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
  });

  return {
    async grant(userId, clientId, scopes) {
      const now = new Date(clock.now());
      const earlier = byKey.get(key(userId, clientId));
      const record: ConsentRecord = {
        userId,
        clientId,
        scopes: [...new Set([...(earlier?.scopes ?? []), ...scopes])],
        createdAt: earlier?.createdAt ?? now,
        updatedAt: now,
      };
      byKey.set(key(userId, clientId), record);
      return copy(record);
    },
    async find(userId, clientId) {
      const record = byKey.get(key(userId, clientId));
      return record ? copy(record) : null;
    },
    async listByUser(userId) {
      return [...byKey.values()]
        .filter((record) => record.userId === userId)
        .sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime())
        .map(copy);
    },
    async revoke(userId, clientId) {
      return byKey.delete(key(userId, clientId));
    },
    async ping() {},
  };
}
