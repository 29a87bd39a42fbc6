/**
 * What the event tests share: a real HTTP receiver that verifies each delivery's signature
 * with the standardwebhooks library and can be told to fail or hang, and reading the
 * stream back from a test Redis.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { SECURITY_EVENTS_STREAM, type SecurityEvent } from '../../src/events/types.js';

/** A fresh Standard Webhooks secret, as the README says to make one. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

export interface Delivery {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** What the receiver answered. */
  readonly status: number;
  /** The verified event (undefined when the signature did not verify). */
  readonly event: SecurityEvent | undefined;
}

export interface Receiver {
  readonly url: string;
  readonly deliveries: Delivery[];
  /** The events answered with 2xx, in the order they were accepted. */
  accepted(): SecurityEvent[];
  /** Answer the next `count` requests with 503. */
  failNext(count: number): void;
  /** Hold every request unanswered until `release` (or `close`). */
  hang(): void;
  release(): void;
  close(): Promise<void>;
}

export async function startReceiver(secret: string): Promise<Receiver> {
  const verifier = new Webhook(secret);
  const deliveries: Delivery[] = [];
  let failures = 0;
  let hanging = false;
  const held: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      let event: SecurityEvent | undefined;
      try {
        event = verifier.verify(body, req.headers as Record<string, string>) as SecurityEvent;
      } catch {
        event = undefined;
      }
      const answer = () => {
        const status = !event ? 400 : failures > 0 ? 503 : 204;
        if (status === 503) failures -= 1;
        deliveries.push({ headers: req.headers, body, status, event });
        res.statusCode = status;
        res.end();
      };
      if (hanging) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    deliveries,
    accepted: () => deliveries.filter((d) => d.status < 300 && d.event).map((d) => d.event!),
    failNext: (count) => void (failures = count),
    hang: () => void (hanging = true),
    release() {
      hanging = false;
      for (const answer of held.splice(0)) answer();
    },
    async close() {
      hanging = false;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every entry of the security event stream: its id, raw fields and the event. */
export async function streamEntries(redis: Redis): Promise<{ id: string; raw: string; event: SecurityEvent }[]> {
  const entries = await redis.xrange(SECURITY_EVENTS_STREAM, '-', '+');
  return entries.map(([id, fields]) => {
    const raw = fields[fields.indexOf('event') + 1]!;
    return { id, raw, event: JSON.parse(raw) as SecurityEvent };
  });
}

/** Waits until `check` holds, polling. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
