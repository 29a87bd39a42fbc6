/** The embedded mode's user change feed: one process, so a change is told in-process at once and never missed. */
import type { UserChangeFeed } from '../types.js';

export function createMemoryUserChangeFeed(): UserChangeFeed {
  const listeners: { changed(userId: string): void; reset(): void }[] = [];
  return {
    async publish(userId) {
      for (const listener of listeners) listener.changed(userId);
    },
    subscribe(listener) {
      listeners.push(listener);
    },
    live: () => true,
    async close() {},
  };
}
