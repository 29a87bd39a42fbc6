/**
 * User changes told to every instance through Redis pub/sub (channel `users:changed`, the
 * message a user id). Subscribing takes a connection of its own. Pub/sub delivers at most
 * once: while that connection is down changes are lost, so every close and every
 * (re)subscription resets the listeners, and `live()` is true only between a confirmed
 * SUBSCRIBE and the next close. Under Cluster, PUBLISH reaches every node's subscribers.
 */
import { Cluster } from 'ioredis';
import type { UserChangeFeed } from '../types.js';
import { connectRedis, guardRedis, type RedisClient } from './connection.js';

const CHANNEL = 'users:changed';

export function createRedisUserChangeFeed(redis: RedisClient): UserChangeFeed {
  const subscriber: RedisClient =
    redis instanceof Cluster ? redis.duplicate(undefined, { autoResubscribe: false }) : redis.duplicate({ autoResubscribe: false });
  const listeners: { changed(userId: string): void; reset(): void }[] = [];
  let live = false;
  let closed = false;
  const reset = () => {
    live = false;
    for (const listener of listeners) listener.reset();
  };

  async function subscribe(): Promise<void> {
    reset();
    try {
      await subscriber.subscribe(CHANNEL);
      if (!closed && subscriber.status === 'ready') live = true;
    } catch {
      // The connection went again; its next 'ready' subscribes anew.
    }
  }

  subscriber.on('message', (channel: string, message: string) => {
    if (channel !== CHANNEL) return;
    for (const listener of listeners) listener.changed(message);
  });
  subscriber.on('ready', () => void subscribe());
  subscriber.on('close', reset);
  subscriber.on('end', reset);
  connectRedis(subscriber).catch(() => undefined);

  return {
    async publish(userId) {
      await guardRedis('user changes', () => redis.publish(CHANNEL, userId));
    },
    subscribe(listener) {
      listeners.push(listener);
    },
    live: () => live,
    async close() {
      closed = true;
      live = false;
      subscriber.disconnect();
    },
  };
}
