/**
 * Mail out: `send` renders a message and queues it (a request never waits on SMTP); a worker
 * in every instance takes messages from the queue and hands them to the transport, with
 * exponential backoff between attempts.
 *
 * Delivery guarantee: at least once, until MAIL_MAX_ATTEMPTS attempts failed (then the
 * message is buried in the dead-letter list with a log line). A message leaves the queue
 * only after the SMTP server accepted it, so an outage or a crash loses nothing. A message
 * is sent twice only when (a) the instance dies, or loses Redis, between the server's
 * acceptance and the acknowledgement, or (b) one attempt outlived its lease (half the first
 * backoff step) and another worker took it meanwhile. Every attempt carries the same
 * Message-ID, so a receiver that drops duplicates by it shows the message once.
 *
 * The queued payload holds the link, a secret: it is sealed (AES-256-GCM) with a key of its
 * own, so Redis holds nothing usable.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Random } from '../random.js';
import type { MailQueueStore, QueuedMail } from '../stores/types.js';
import type { MailData, MailKind, MailTemplates } from './templates.js';
import type { MailTransport, OutgoingMail } from './transport.js';

export interface MailRetry {
  /** ms before the second attempt; each further one waits twice as long, up to `maxMs`. */
  readonly baseMs: number;
  readonly maxMs: number;
  /** Attempts before a message is buried. */
  readonly maxAttempts: number;
}

export interface MailOutboxDeps {
  readonly queue: MailQueueStore;
  /** undefined: mail is not configured (production without SMTP_URL): nothing is queued, a line is logged. */
  readonly transport: MailTransport | undefined;
  readonly templates: MailTemplates;
  /** 32 bytes that seal the queued payloads; the same on every instance. */
  readonly sealKey: Buffer;
  /** Right-hand side of the Message-IDs (the issuer's host). */
  readonly messageIdDomain: string;
  readonly retry: MailRetry;
  /** ms between looks at the queue (a local `send` wakes the worker at once). */
  readonly pollMs: number;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random: Random;
  /** This worker's name in the consumer group (unique per process). */
  readonly consumer: string;
}

const BATCH = 10;

export function createMailOutbox(deps: MailOutboxDeps) {
  const { queue, transport, templates, retry, logger, clock } = deps;
  /** Idle time before a taken message is due again, after `deliveries` attempts. */
  const dueAfterMs = (deliveries: number) => Math.min(retry.baseMs * 2 ** Math.max(0, deliveries - 1), retry.maxMs);
  /** An attempt gives up after half the first step, so no other worker takes a message still being sent. */
  const attemptTimeoutMs = Math.max(500, Math.floor(retry.baseMs / 2));

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = true;

  function seal(mail: OutgoingMail): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', deps.sealKey, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(mail), 'utf8'), cipher.final()]);
    return [iv, cipher.getAuthTag(), body].map((part) => part.toString('base64url')).join('.');
  }

  function open(payload: string): OutgoingMail {
    const [iv = '', tag = '', body = ''] = payload.split('.');
    const decipher = createDecipheriv('aes-256-gcm', deps.sealKey, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return JSON.parse(Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')) as OutgoingMail;
  }

  async function attempt(entry: QueuedMail): Promise<void> {
    let mail: OutgoingMail;
    try {
      mail = open(entry.payload);
    } catch {
      await queue.bury(entry.id, entry.payload, 'unreadable (sealed with another key?)');
      logger.error({ mailId: entry.id }, 'mail: a queued message cannot be opened; buried');
      return;
    }
    try {
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        transport!.send(mail),
        new Promise((_, reject) => (timeout = setTimeout(() => reject(new Error(`no answer within ${attemptTimeoutMs} ms`)), attemptTimeoutMs))),
      ]).finally(() => clearTimeout(timeout));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (entry.deliveries >= retry.maxAttempts) {
        await queue.bury(entry.id, entry.payload, reason);
        logger.error({ mailId: entry.id, kind: mail.kind, attempts: entry.deliveries, reason }, 'mail: giving up on a message; buried in the dead-letter list');
      } else {
        logger.warn(
          { mailId: entry.id, kind: mail.kind, attempt: entry.deliveries, retryInMs: dueAfterMs(entry.deliveries), reason },
          'mail: sending failed; will retry',
        );
      }
      return;
    }
    await queue.ack(entry.id);
    logger.info({ mailId: entry.id, kind: mail.kind, attempt: entry.deliveries }, 'mail: sent');
  }

  /** One pass: messages due again first, then new ones, until neither has any. */
  async function drain(): Promise<void> {
    for (;;) {
      const batch = [...(await queue.takeDue(deps.consumer, BATCH, dueAfterMs)), ...(await queue.takeNew(deps.consumer, BATCH))];
      if (batch.length === 0) return;
      for (const entry of batch) await attempt(entry);
    }
  }

  /** Runs `drain` unless one is running; one that is asked for meanwhile runs right after it. */
  function wake(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await drain();
        } catch (err) {
          logger.warn({ err }, 'mail: the queue cannot be read now; will try again');
        }
      } while (again && !stopped);
    })().finally(() => (running = undefined));
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => void wake().finally(schedule), deps.pollMs);
    timer.unref();
  }

  return {
    /**
     * Renders and queues one message; resolves once it is queued (StoreUnavailableError when
     * the queue cannot be reached). Never waits for SMTP.
     */
    async send(kind: MailKind, to: string, data: Omit<MailData, 'email'> & { email?: string }): Promise<void> {
      if (!transport) {
        logger.warn({ kind }, 'mail: not configured (SMTP_URL is unset); a message was not sent');
        return;
      }
      const rendered = templates.render(kind, { email: to, ...data });
      const mail: OutgoingMail = {
        kind,
        to,
        ...rendered,
        link: data.link,
        messageId: `<${deps.random.uuid()}@${deps.messageIdDomain}>`,
        queuedAt: clock.now(),
      };
      await queue.add(seal(mail));
      if (!stopped) void wake();
    },

    /** Starts the worker (nothing to do without a transport). */
    start(): void {
      if (!transport || !stopped) return;
      stopped = false;
      schedule();
      void wake();
    },

    /** Runs the worker once now (tests; a shutdown that wants the queue flushed). */
    flush: (): Promise<void> => wake(),

    /** Stops the worker after the pass under way; messages left stay queued for the next start. */
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await running;
      transport?.close();
    },
  };
}

export type MailOutbox = ReturnType<typeof createMailOutbox>;
