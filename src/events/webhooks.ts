/**
 * Webhook delivery from the event stream, at least once and in order per subject.
 *
 * Design. Each URL has its own consumer group on the stream (`webhook:<sha256(url)>`), so
 * one receiver's outage never holds back another's. Of all instances, one at a time
 * delivers to a given URL: the holder of the group's lease, renewed while it works and
 * taken over by another instance once it lapses (a crash). The holder
 *  1. on taking the lease, claims every entry still pending in the group (XAUTOCLAIM:
 *     what a previous holder read but never acknowledged) and delivers those first;
 *  2. then reads new entries (XREADGROUP `>`) in stream order, a batch at a time;
 *  3. delivers a batch subject by subject: one subject's events one after another, each
 *     retried with exponential backoff (WEBHOOK_RETRY_BASE doubling up to
 *     WEBHOOK_RETRY_MAX) until the receiver answers 2xx, then acknowledged (XACK);
 *     different subjects in parallel; the next batch starts once the batch is delivered.
 * So an event is acknowledged only after a 2xx, an instance that stops loses nothing
 * (its unacknowledged entries are claimed by the next holder), and a subject's events
 * reach the receiver in stream order. A receiver may see an event twice (a crash between
 * its 2xx and the XACK): `webhook-id` (the event id) is the same on every attempt.
 * An event trimmed from the stream (EVENTS_STREAM_MAXLEN) before it was delivered is
 * lost; the holder logs each such one.
 *
 * Each body is the event's JSON, signed per Standard Webhooks by the `standardwebhooks`
 * package: `webhook-id`, `webhook-timestamp` (of this attempt) and `webhook-signature`.
 */
import { createHash } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { Logger } from '../log.js';
import type { EventStreamStore, StreamEntry } from '../stores/types.js';
import { fromStreamFields } from './emitter.js';
import { orderingKey, type SecurityEvent } from './types.js';

export interface WebhookOptions {
  readonly urls: readonly string[];
  /** `whsec_…` (Standard Webhooks). */
  readonly secret: string;
  readonly stream: EventStreamStore;
  readonly logger: Logger;
  /** This instance's name in the consumer groups; unique per process. */
  readonly consumer: string;
  readonly timeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** How long a lease lasts without renewal: how soon another instance takes over from a crashed one. */
  readonly leaseMs?: number;
  /** How often an idle holder looks for entries other instances appended. */
  readonly pollMs?: number;
  readonly batchSize?: number;
  readonly fetch?: typeof fetch;
}

export interface WebhookDelivery {
  start(): Promise<void>;
  /** Something was appended: look now rather than at the next poll. */
  notify(): void;
  /**
   * Stops delivering: in-flight attempts are abandoned unacknowledged (the next holder
   * delivers them again). `release: false` keeps the lease until it lapses, as a crash would.
   */
  stop(options?: { release?: boolean }): Promise<void>;
}

/** The URL without what may be a credential (userinfo, query, fragment), for the log. */
function loggableUrl(url: string): string {
  const { protocol, host, pathname } = new URL(url);
  return `${protocol}//${host}${pathname}`;
}

export const groupName = (url: string): string => `webhook:${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;

/** The delay before retry `attempt` (1, 2, ...): base × 2^(attempt-1), at most `max`, with ±20 % jitter so receivers are not hit in step. */
export function backoff(attempt: number, baseMs: number, maxMs: number, jitter = Math.random()): number {
  const plain = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.min(maxMs, Math.round(plain * (0.8 + 0.4 * jitter)));
}

export function createWebhookDelivery(options: WebhookOptions): WebhookDelivery {
  const signer = new Webhook(options.secret);
  const doFetch = options.fetch ?? fetch;
  const leaseMs = options.leaseMs ?? 15_000;
  const pollMs = options.pollMs ?? 1000;
  const batchSize = options.batchSize ?? 100;
  // One worker per distinct URL: two for one URL would share its group and lease, and race.
  const workers = [...new Set(options.urls)].map((url) => createWorker(url));

  function createWorker(url: string) {
    const group = groupName(url);
    const log = options.logger.child({ webhook: loggableUrl(url), group });
    let running = false;
    let holding = false;
    let loop: Promise<void> | undefined;
    const inFlight = new Set<AbortController>();
    let groupReady = false;
    /**
     * The group is made from the stream's end the first time ('$': a new webhook gets the
     * events from now on). Made again later (the stream was lost with a Redis that restarted
     * empty), it starts from the beginning: everything in the new stream is undelivered.
     */
    let groupMade = false;
    const makeGroup = async () => {
      await options.stream.createGroup(group, groupMade ? '0' : '$');
      groupMade = groupReady = true;
    };
    /** Sleepers woken by `stop`; the idle ones also by `notify` (a retry's backoff is not cut short). */
    const sleepers = new Set<() => void>();
    const idlers = new Set<() => void>();

    const pause = (ms: number, idle = false) =>
      new Promise<void>((resolve) => {
        if (!running) return resolve();
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          sleepers.delete(done);
          idlers.delete(done);
          resolve();
        }
        sleepers.add(done);
        if (idle) idlers.add(done);
      });

    async function post(event: SecurityEvent): Promise<boolean> {
      const body = JSON.stringify(event);
      const now = new Date();
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), options.timeoutMs);
      inFlight.add(controller);
      try {
        const response = await doFetch(url, {
          method: 'POST',
          redirect: 'manual',
          signal: controller.signal,
          headers: {
            'content-type': 'application/json',
            'user-agent': 'token-authority-webhooks',
            'webhook-id': event.id,
            'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
            'webhook-signature': signer.sign(event.id, now, body),
          },
          body,
        });
        await response.body?.cancel().catch(() => undefined);
        if (response.status >= 200 && response.status < 300) return true;
        log.warn({ event_id: event.id, status: response.status }, 'webhook delivery refused; will retry');
        return false;
      } catch (err) {
        if (running) log.warn({ event_id: event.id, err: { message: (err as Error).message } }, 'webhook delivery failed; will retry');
        return false;
      } finally {
        clearTimeout(timer);
        inFlight.delete(controller);
      }
    }

    /** Delivers one entry until a 2xx (then acknowledges it) or until this instance stops holding the lease. */
    async function deliver(entry: StreamEntry): Promise<void> {
      const event = fromStreamFields(entry.fields);
      if (!event) {
        log.error({ entry: entry.id }, 'stream entry holds no event; acknowledged without delivery');
        await options.stream.ack(group, [entry.id]);
        return;
      }
      for (let attempt = 1; running && holding; attempt += 1) {
        if (await post(event)) {
          await options.stream.ack(group, [entry.id]);
          return;
        }
        if (running && holding) await pause(backoff(attempt, options.retryBaseMs, options.retryMaxMs));
      }
    }

    async function deliverBatch(entries: readonly (StreamEntry | { id: string; fields: null })[]): Promise<void> {
      const bySubject = new Map<string, StreamEntry[]>();
      const gone: string[] = [];
      for (const entry of entries) {
        if (entry.fields === null) {
          gone.push(entry.id);
          continue;
        }
        const event = fromStreamFields(entry.fields);
        const key = event ? orderingKey(event.subject) : entry.id;
        bySubject.set(key, [...(bySubject.get(key) ?? []), entry]);
      }
      if (gone.length > 0) {
        log.error({ entries: gone }, 'events trimmed from the stream (EVENTS_STREAM_MAXLEN) before they were delivered: lost for this webhook');
        await options.stream.ack(group, gone);
      }
      // Renew the lease while the batch takes its time (a receiver that keeps failing).
      const renew = setInterval(() => void holdLease().catch(() => undefined), Math.max(10, leaseMs / 3));
      try {
        await Promise.all(
          [...bySubject.values()].map(async (chain) => {
            for (const entry of chain) {
              if (!running || !holding) return;
              await deliver(entry);
            }
          }),
        );
      } finally {
        clearInterval(renew);
      }
    }

    /** Takes or renews the lease; rejects when the stream is unavailable (and then no longer holds). */
    async function holdLease(): Promise<boolean> {
      let held = false;
      try {
        held = await options.stream.holdLease(group, options.consumer, leaseMs);
      } finally {
        if (!held && holding) log.warn('webhook delivery: lease lost (another instance delivers, or the stream is unavailable)');
        holding = held && running;
      }
      return holding;
    }

    async function step(): Promise<void> {
      if (!groupReady) await makeGroup();
      const wasHolding = holding;
      if (!(await holdLease())) {
        await pause(Math.max(pollMs, leaseMs / 3));
        return;
      }
      if (!wasHolding) {
        const claimed = await options.stream.claim(group, options.consumer, 0);
        if (claimed > 0) log.info({ claimed }, 'webhook delivery: took over entries another instance left pending');
      }
      let entries = await options.stream.readGroup(group, options.consumer, { count: batchSize, pending: true });
      if (entries.length === 0) entries = await options.stream.readGroup(group, options.consumer, { count: batchSize, pending: false });
      if (entries.length === 0) {
        await pause(pollMs, true);
        return;
      }
      await deliverBatch(entries);
    }

    return {
      async start() {
        running = true;
        // Created now, so that events appended from here on are delivered; when the stream
        // is unreachable, the loop keeps trying.
        await makeGroup().catch(() => undefined);
        loop = (async () => {
          // While the stream is unavailable: one warning, then retries backing off to 30 s.
          let failures = 0;
          while (running) {
            try {
              await step();
              if (failures > 0) log.info({ failures }, 'webhook delivery: event stream available again');
              failures = 0;
            } catch (err) {
              holding = false;
              groupReady = false;
              if (failures === 0) log.warn({ err: { message: (err as Error).message } }, 'webhook delivery: event stream unavailable; retrying');
              failures += 1;
              await pause(Math.min(30_000, pollMs * 2 ** Math.min(failures - 1, 10)));
            }
          }
        })();
      },
      notify() {
        for (const done of idlers) done();
      },
      async stop(release: boolean) {
        running = false;
        for (const controller of inFlight) controller.abort();
        for (const done of sleepers) done();
        await loop;
        if (release && holding) await options.stream.releaseLease(group, options.consumer).catch(() => undefined);
        holding = false;
      },
    };
  }

  return {
    async start() {
      await Promise.all(workers.map((worker) => worker.start()));
    },
    notify() {
      for (const worker of workers) worker.notify();
    },
    async stop({ release = true } = {}) {
      await Promise.all(workers.map((worker) => worker.stop(release)));
    },
  };
}
