/**
 * Events from the admin scripts (keys:rotate, client:create), which run in processes of
 * their own: when REDIS_URL (or REDIS_CLUSTER_NODES) is set they append to the same stream
 * as the servers, whose webhook delivery then sends them on. Without Redis there is no
 * shared stream (a dev server's in-memory one lives in its own process): nothing is
 * published. When Redis is set but cannot be reached, the events are printed on stderr as
 * JSON lines instead, so that a cron job's log still holds them.
 */
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Random } from '../random.js';
import { closeRedis, connectRedis, createRedisClient } from '../stores/redis/connection.js';
import { createRedisEventStream } from '../stores/redis/event-stream.js';
import { stampEvent, toStreamFields } from './emitter.js';
import { SECURITY_EVENTS_STREAM, type NewEvent, type SecurityEvent } from './types.js';

export interface ScriptEventDeps {
  readonly clock: Clock;
  readonly random: Random;
  /** Where a line goes (stderr). */
  readonly print: (line: string) => void;
}

/** Appends `events`; never throws: a problem is printed, with each event, and the script's own work stands. */
export async function publishScriptEvents(
  config: Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'events'>,
  events: readonly NewEvent[],
  deps: ScriptEventDeps,
): Promise<SecurityEvent[]> {
  const stamped = events.map((event) => stampEvent(event, deps));
  if (stamped.length === 0) return stamped;
  const printAll = () => {
    for (const event of stamped) deps.print(`event: ${JSON.stringify(event)}`);
  };
  if (!config.redisUrl && !config.redisClusterNodes) return [];
  const redis = createRedisClient({ url: config.redisUrl, clusterNodes: config.redisClusterNodes });
  try {
    await connectRedis(redis);
    const stream = createRedisEventStream({ redis, key: SECURITY_EVENTS_STREAM, maxLen: config.events.streamMaxLen });
    for (const event of stamped) await stream.append(toStreamFields(event));
  } catch (err) {
    deps.print(`warning: security events not appended to the event stream (${err instanceof Error ? err.message : String(err)}); here they are:`);
    printAll();
  } finally {
    await closeRedis(redis);
  }
  return stamped;
}
