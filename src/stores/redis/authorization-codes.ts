/**
 * Authorization codes in Redis (standalone or Cluster).
 *
 * One key per code, `ac:{<codeHash>}` (the hash tag keeps each script on one slot): a JSON
 * string `{c: client id, r: the record as JSON, x: expiry, k: forget-at, s: state, i?: issued
 * as JSON}`; the record and issued are kept as opaque strings, so cjson never re-encodes
 * their numbers. Key TTL = k - now, set at save (`k` = x + consumedRetentionMs).
 *
 * Time is Redis's (TIME inside each script), not the calling instance's: a code saved by
 * one instance and presented to another lives 60 s by one clock. `#!lua` with no flags
 * marks the scripts as writing, so Redis refuses one whole (before it runs) when out of
 * memory; TIME is allowed because Redis 7 replicates a script's effects, not the script.
 */
import {
  assertCodeRecord,
  assertIssued,
  assertStoreId,
  assertTtl,
  CODE_STORE,
  codeRecordOf,
  DEFAULT_CONSUMED_RETENTION_MS,
  issuedOf,
  isStoreId,
} from '../shared/authorization.js';
import { DuplicateKeyError, type AuthorizationCodeRecord, type AuthorizationCodeStore, type ConsumeCodeResult, type IssuedFromCode } from '../types.js';
import { defineScript, guardRedis, pingRedis, runScript, type RedisClient } from './connection.js';

const codeKey = (codeHash: string): string => `ac:{${codeHash}}`;

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: code. ARGV: client id, record JSON, ttl ms, retention ms. Replies 1, or 0 when the key exists. */
const SAVE = defineScript(`#!lua
${NOW_MS}
local ttl = tonumber(ARGV[3])
local keep = ttl + tonumber(ARGV[4])
local entry = cjson.encode({c = ARGV[1], r = ARGV[2], x = now + ttl, k = now + keep, s = 'live'})
if redis.call('SET', KEYS[1], entry, 'NX', 'PX', string.format('%d', keep)) then return 1 end
return 0
`);

/**
 * KEYS: code. ARGV: expected client id ('' = any). Replies nil (invalid), or
 * {outcome, record JSON, issued JSON or ''}. The one step that makes a code single use.
 */
const CONSUME = defineScript(`#!lua
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local e = cjson.decode(raw)
if ARGV[1] ~= '' and e.c ~= ARGV[1] then return false end
${NOW_MS}
if now >= e.k then return false end
local outcome = 'reused'
if e.s == 'live' then
  if now >= e.x then return false end
  outcome = 'consumed'
  e.s = 'consumed'
else
  e.s = 'reused'
end
redis.call('SET', KEYS[1], cjson.encode(e), 'KEEPTTL')
return {outcome, e.r, e.i or ''}
`);

/** KEYS: code. ARGV: issued JSON. Replies 'recorded', 'reused' or 'unknown'. */
const RECORD_ISSUED = defineScript(`#!lua
local raw = redis.call('GET', KEYS[1])
if not raw then return 'unknown' end
local e = cjson.decode(raw)
${NOW_MS}
if now >= e.k or e.s == 'live' or e.i then return 'unknown' end
e.i = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(e), 'KEEPTTL')
if e.s == 'reused' then return 'reused' end
return 'recorded'
`);

const INVALID: ConsumeCodeResult = Object.freeze({ outcome: 'invalid' });

export function createRedisAuthorizationCodeStore(options: { redis: RedisClient; consumedRetentionMs?: number }): AuthorizationCodeStore {
  const { redis } = options;
  const retentionMs = options.consumedRetentionMs ?? DEFAULT_CONSUMED_RETENTION_MS;
  assertTtl(retentionMs, 'consumedRetentionMs');
  const run = (script: typeof SAVE, codeHash: string, args: (string | number)[]) =>
    guardRedis(CODE_STORE, () => runScript(redis, script, [codeKey(codeHash)], args));

  return {
    ping: () => pingRedis(redis),

    async save(codeHash, record, ttlMs) {
      assertStoreId(codeHash, 'codeHash');
      assertCodeRecord(record);
      assertTtl(ttlMs);
      const reply = await run(SAVE, codeHash, [record.clientId, JSON.stringify(codeRecordOf(record)), ttlMs, retentionMs]);
      if (reply !== 1) throw new DuplicateKeyError('code');
    },

    async consume(codeHash, expected = {}) {
      if (!isStoreId(codeHash)) return INVALID;
      const reply = await run(CONSUME, codeHash, [expected.clientId ?? '']);
      if (!Array.isArray(reply)) return INVALID;
      const [outcome, record, issued] = reply as [string, string, string];
      const parsed = JSON.parse(record) as AuthorizationCodeRecord;
      if (outcome === 'consumed') return { outcome, record: codeRecordOf(parsed) };
      return issued === ''
        ? { outcome: 'reused', record: codeRecordOf(parsed) }
        : { outcome: 'reused', record: codeRecordOf(parsed), issued: issuedOf(JSON.parse(issued) as IssuedFromCode) };
    },

    async recordIssued(codeHash, issued) {
      assertIssued(issued);
      if (!isStoreId(codeHash)) return 'unknown';
      const reply = await run(RECORD_ISSUED, codeHash, [JSON.stringify(issuedOf(issued))]);
      return reply === 'recorded' || reply === 'reused' ? reply : 'unknown';
    },
  };
}
