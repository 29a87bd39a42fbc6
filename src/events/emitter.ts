/**
 * Publishing security events: each is logged at `info` with `event: <type>`, then appended
 * to the event stream, where every instance's events form one ordered history and from
 * which webhooks are delivered (`webhooks.ts`). Emitting never waits for, nor fails
 * because of, the stream: the request that caused an event is answered as fast either
 * way. An append that fails is logged as lost, with the event's id (the log line written
 * first stays the record).
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Random } from '../random.js';
import type { EventStreamStore } from '../stores/types.js';
import { clipUserAgent, type EventSink, type NewEvent, type RequestOrigin, type SecurityEvent } from './types.js';

/** Stream fields of an event: its type (for a quick filter) and the JSON. */
export function toStreamFields(event: SecurityEvent): Record<string, string> {
  return { type: event.type, event: JSON.stringify(event) };
}

/** The event in a stream entry, or undefined when the entry holds none. */
export function fromStreamFields(fields: Readonly<Record<string, string>>): SecurityEvent | undefined {
  try {
    return fields.event === undefined ? undefined : (JSON.parse(fields.event) as SecurityEvent);
  } catch {
    return undefined;
  }
}

/**
 * Completes a NewEvent: id, time, the request id of the request in progress (null outside
 * one), and the request's address and user agent as the actor's when the caller gave none.
 */
export function stampEvent(event: NewEvent, deps: { clock: Clock; random: Random; origin?: RequestOrigin | undefined }): SecurityEvent {
  const { origin } = deps;
  const userAgent = clipUserAgent(event.actor.user_agent ?? origin?.userAgent);
  const actor = origin ? { ...event.actor, ip: event.actor.ip ?? origin.ip, ...(userAgent !== undefined && { user_agent: userAgent }) } : event.actor;
  return {
    id: deps.random.uuid(),
    time: new Date(deps.clock.now()).toISOString(),
    type: event.type,
    actor,
    subject: event.subject,
    request_id: origin?.requestId ?? null,
    data: event.data,
  } as SecurityEvent;
}

export function logEvent(logger: Logger, event: SecurityEvent): void {
  logger.info(
    { event: event.type, event_id: event.id, reqId: event.request_id ?? undefined, actor: event.actor, subject: event.subject, data: event.data },
    'security event',
  );
}

export interface SecurityEvents extends EventSink {
  /** Resolves when every event emitted so far has been appended (or given up on). */
  flush(): Promise<void>;
  /** Called after each append (the local webhook deliverer wakes up). */
  onAppend(listener: () => void): void;
}

export function createSecurityEvents(deps: {
  logger: Logger;
  clock: Clock;
  random: Random;
  stream: Pick<EventStreamStore, 'append'> | undefined;
  /** The request in progress, if any. */
  origin: () => RequestOrigin | undefined;
}): SecurityEvents {
  const { logger, stream } = deps;
  const inFlight = new Set<Promise<void>>();
  const listeners: (() => void)[] = [];

  // Not chained: appends go out on one connection in the order they are made, so the
  // stream keeps this instance's order without waiting for each reply.
  async function append(event: SecurityEvent): Promise<void> {
    if (!stream) return;
    try {
      await stream.append(toStreamFields(event));
    } catch (err) {
      logger.error({ event: event.type, event_id: event.id, err }, 'security event not appended to the event stream (it is in this log only)');
      return;
    }
    for (const listener of listeners) listener();
  }

  return {
    emit(...events) {
      const origin = deps.origin();
      for (const event of events) {
        const stamped = stampEvent(event, { ...deps, origin });
        logEvent(logger, stamped);
        const done = append(stamped);
        inFlight.add(done);
        void done.finally(() => inFlight.delete(done));
      }
    },
    async flush() {
      await Promise.all([...inFlight]);
    },
    onAppend(listener) {
      listeners.push(listener);
    },
  };
}
