/**
 * Access-token denylist in Redis: one key per denied `jti`, `at:deny:<jti>`, holding the
 * token's expiry. The key's TTL is set relative to the injected clock (PX = expiry - now)
 * rather than absolute (PXAT), and `isDenied` compares the stored expiry with that clock:
 * the entry lives exactly as long as the application believes the token does, whatever
 * Redis's own clock says. The TTL only collects garbage.
 */
import type { Clock } from '../../clock.js';
import type { AccessTokenDenylist } from '../types.js';
import { guardRedis, pingRedis, type RedisClient } from './connection.js';
import { assertJti, isJti } from '../memory/denylist.js';

const STORE = 'access-token denylist';
const key = (jti: string): string => `at:deny:${jti}`;

export function createRedisDenylist({ redis, clock }: { redis: RedisClient; clock: Clock }): AccessTokenDenylist {
  return {
    ping: () => pingRedis(redis),

    async deny(jti: string, expiresAt: number) {
      assertJti(jti, expiresAt);
      const ttl = Math.ceil(expiresAt - clock.now());
      if (ttl <= 0) return;
      await guardRedis(STORE, () => redis.set(key(jti), String(Math.ceil(expiresAt)), 'PX', ttl));
    },

    async isDenied(jti: string) {
      if (!isJti(jti)) return false;
      const until = await guardRedis(STORE, () => redis.get(key(jti)));
      return until !== null && clock.now() < Number(until);
    },
  };
}
