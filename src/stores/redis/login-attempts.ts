/**
 * The attempt ledger in Redis: per budget key two sorted sets under one hash tag, failures
 * and holds, each member an attempt id scored by when it stops counting. One script
 * reserves every budget and one settles them: on a single Redis one call for all, under
 * Cluster one per budget (each its own slot), sent together. Time is Redis's (TIME), so
 * instances' clocks do not matter.
 */
import { Cluster } from 'ioredis';
import type { AttemptBudget, AttemptLedger, AttemptReservation } from '../types.js';
import { defineScript, guardRedis, runScript, type RedisClient } from './connection.js';

const failuresKey = (key: string) => `la:{${key}}:f`;
const holdsKey = (key: string) => `la:{${key}}:h`;

const NOW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * KEYS: failures, holds for each budget. ARGV: id, hold ms, then points for each budget.
 * Replies {1} when admitted (the hold is added to every budget), else {0, retry-after ms,
 * 1 if only holds fill the full budgets}.
 */
const RESERVE = defineScript(`${NOW_LUA}
local blocked, wait, inflight, full = false, 0, 1, {}
for i = 1, #KEYS / 2 do
  local f, h = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREMRANGEBYSCORE', f, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', h, '-inf', now)
  local nf = redis.call('ZCARD', f)
  local points = tonumber(ARGV[2 + i])
  if nf + redis.call('ZCARD', h) >= points then
    blocked = true
    full[#full + 1] = i
    if nf >= points then
      inflight = 0
      local oldest = redis.call('ZRANGE', f, nf - points, nf - points, 'WITHSCORES')
      wait = math.max(wait, tonumber(oldest[2]) - now)
    end
  end
end
if blocked then return {0, wait, inflight, full} end
local hold = tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  redis.call('ZADD', KEYS[2 * i], now + hold, ARGV[1])
  redis.call('PEXPIRE', KEYS[2 * i], hold)
end
return {1}
`);

/**
 * KEYS: failures, holds for each budget. ARGV: id, outcome, then window ms and '1' to
 * reset on success for each budget. Drops the hold; a failure is kept for the window.
 */
const SETTLE = defineScript(`${NOW_LUA}
local filled = {}
for i = 1, #KEYS / 2 do
  local f, h = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREM', h, ARGV[1])
  local window = tonumber(ARGV[3 * i])
  if ARGV[2] == 'failed' then
    redis.call('ZADD', f, now + window, ARGV[1])
    redis.call('PEXPIRE', f, window)
    if redis.call('ZCARD', f) >= tonumber(ARGV[2 + 3 * i]) then filled[#filled + 1] = i end
  elseif ARGV[2] == 'succeeded' and ARGV[1 + 3 * i] == '1' then
    redis.call('DEL', f)
  end
end
return filled
`);

const STORE = 'rate-limit';

export function createRedisAttemptLedger(redis: RedisClient): AttemptLedger {
  // Under Cluster each budget is its own slot; on one server, one call carries them all.
  const groups = (budgets: readonly AttemptBudget[]): (readonly AttemptBudget[])[] =>
    redis instanceof Cluster ? budgets.map((budget) => [budget]) : [budgets];
  const keys = (budgets: readonly AttemptBudget[]) => budgets.flatMap((budget) => [failuresKey(budget.key), holdsKey(budget.key)]);

  return {
    async reserve(id, budgets, holdMs) {
      const replies = await Promise.all(
        groups(budgets).map((group) => guardRedis(STORE, () => runScript(redis, RESERVE, keys(group), [id, holdMs, ...group.map((budget) => budget.points)]))),
      );
      const refusals = replies.map((reply) => reply as number[]).filter((reply) => reply[0] !== 1);
      if (refusals.length === 0) return { admitted: true };
      // Some slots may have admitted: their holds go back (nothing is counted for a refusal).
      if (refusals.length < replies.length) await this.settle(id, budgets, 'released');
      const full = groups(budgets).flatMap((group, index) => {
        const reply = replies[index] as unknown[];
        return reply[0] === 1 ? [] : ((reply[3] as number[] | undefined) ?? []).map((at) => group[at - 1]!.key);
      });
      const result: AttemptReservation = {
        admitted: false,
        retryAfterMs: Math.max(...refusals.map((reply) => Number(reply[1]))),
        inFlight: refusals.every((reply) => reply[2] === 1),
        full,
      };
      return result;
    },
    async settle(id, budgets, outcome) {
      const replies = await Promise.all(
        groups(budgets).map((group) =>
          guardRedis(STORE, () =>
            runScript(redis, SETTLE, keys(group), [
              id,
              outcome,
              ...group.flatMap((budget) => [budget.windowMs, budget.resetOnSuccess ? '1' : '0', budget.points]),
            ]),
          ),
        ),
      );
      return groups(budgets).flatMap((group, index) => ((replies[index] as number[] | null) ?? []).map((at) => group[at - 1]!.key));
    },
  };
}
