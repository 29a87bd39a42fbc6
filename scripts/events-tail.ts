/**
 * `npm run events:tail [-- --last N] [--type T]... [--json]`
 *
 * Prints the security event stream live, for an operator: the last N events (default 10),
 * then each new one as it is appended by any instance, until interrupted. One line per
 * event: time, type, subject, actor and data; `--json` prints each event's JSON instead
 * (for jq). Needs REDIS_URL (or REDIS_CLUSTER_NODES): a dev server without Redis keeps its
 * stream in its own process. Exit 0 on SIGINT/SIGTERM, 1 on an error, 2 on bad arguments.
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../src/config.js';
import { fromStreamFields } from '../src/events/emitter.js';
import { EVENT_TYPES, orderingKey, SECURITY_EVENTS_STREAM, type SecurityEvent } from '../src/events/types.js';
import { closeRedis, connectRedis, createRedisClient } from '../src/stores/redis/connection.js';
import { createRedisEventStream } from '../src/stores/redis/event-stream.js';
import { StoreUnavailableError, type StreamEntry } from '../src/stores/types.js';
import { runScript } from './run.js';

const USAGE = 'usage: events:tail [--last N] [--type TYPE]... [--json]';
const BLOCK_MS = 5000;

class UsageError extends Error {}

function options(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: { last: { type: 'string', default: '10' }, type: { type: 'string', multiple: true, default: [] }, json: { type: 'boolean', default: false } },
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (${USAGE})`);
  }
  const last = Number(values.last);
  if (!/^\d+$/.test(values.last) || last > 10_000) throw new UsageError(`--last must be an integer from 0 to 10000 (${USAGE})`);
  const unknown = values.type.find((type) => !(EVENT_TYPES as readonly string[]).includes(type));
  if (unknown !== undefined) throw new UsageError(`--type "${unknown}" is not one of ${EVENT_TYPES.join(', ')}`);
  return { last, types: new Set(values.type), json: values.json };
}

/** One event as a line an operator reads. */
function eventLine(event: SecurityEvent): string {
  const actor = [event.actor.type, event.actor.id, event.actor.ip].filter(Boolean).join(' ');
  return `${event.time}  ${event.type.padEnd(22)}  ${orderingKey(event.subject)}  by ${actor}  ${JSON.stringify(event.data)}`;
}

async function main(argv: string[]): Promise<number> {
  const { last, types, json } = options(argv);
  const config = parseConfig(process.env);
  if (!config.redisUrl && !config.redisClusterNodes) {
    throw new UsageError('REDIS_URL (or REDIS_CLUSTER_NODES) is required: without Redis the event stream lives inside the server process');
  }
  // Blocking reads hold the connection: commands may take up to BLOCK_MS, and more.
  const redis = createRedisClient({ url: config.redisUrl, clusterNodes: config.redisClusterNodes, commandTimeoutMs: BLOCK_MS + 5000 });
  let stopping = false;
  const stop = () => {
    stopping = true;
    redis.disconnect();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await connectRedis(redis);
    const stream = createRedisEventStream({ redis, key: SECURITY_EVENTS_STREAM, maxLen: config.events.streamMaxLen });
    const print = (entries: readonly StreamEntry[]) => {
      for (const entry of entries) {
        const event = fromStreamFields(entry.fields);
        if (event && (types.size === 0 || types.has(event.type))) console.log(json ? JSON.stringify(event) : eventLine(event));
      }
    };
    const recent = await stream.recent(last);
    print(recent);
    let after = recent.at(-1)?.id ?? (await stream.lastId());
    console.error(`events:tail: following ${SECURITY_EVENTS_STREAM} (Ctrl-C to stop)`);
    while (!stopping) {
      const entries = await stream.read(after, { count: 100, blockMs: BLOCK_MS });
      print(entries);
      after = entries.at(-1)?.id ?? after;
    }
    return 0;
  } catch (err) {
    if (stopping) return 0;
    throw err;
  } finally {
    await closeRedis(redis);
  }
}

runScript(
  'events:tail',
  () => main(process.argv.slice(2)),
  (err) => {
    if (err instanceof UsageError) return { message: err.message, code: 2 };
    if (err instanceof ConfigError) return { message: err.message, code: 1 };
    if (err instanceof StoreUnavailableError) return { message: 'Redis is unreachable (check REDIS_URL)', code: 1 };
    return { message: err instanceof Error ? err.message : String(err), code: 1 };
  },
);
