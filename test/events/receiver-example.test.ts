/**
 * The README's webhook receiver (examples/webhook-receiver/server.ts, shown verbatim under
 * "Security events"), run as a process: it accepts what the authority's delivery signs,
 * handles a repeated delivery once, and refuses a forged or altered body.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { stampEvent, toStreamFields } from '../../src/events/emitter.js';
import { createWebhookDelivery } from '../../src/events/webhooks.js';
import { cryptoRandom } from '../../src/random.js';
import { createMemoryEventStream } from '../../src/stores/memory/event-stream.js';
import { captureLogs } from '../support/logs.js';
import { freePort, spawnTracked, stopProcess } from '../support/processes.js';
import { eventually, newWebhookSecret } from './support.js';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'webhook-receiver', 'server.ts');
const SECRET = newWebhookSecret();
let url: string;
let output = '';
let child: ChildProcess;

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}/`;
  child = spawnTracked(process.execPath, ['--import', 'tsx', EXAMPLE], { env: { PATH: process.env.PATH, WEBHOOK_SECRET: SECRET, PORT: String(port) } });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await eventually(async () => (await fetch(url, { method: 'POST', body: '{}' }).catch(() => undefined))?.status === 400, 20_000);
}, 30_000);
afterAll(async () => {
  if (child) await stopProcess(child);
});

describe('the README webhook receiver', () => {
  it('is the snippet the README shows', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain(readFileSync(EXAMPLE, 'utf8'));
  });

  it('accepts signed deliveries once each, and refuses a forged or altered one', async () => {
    const stream = createMemoryEventStream({ clock: systemClock, maxLen: 100 });
    const delivery = createWebhookDelivery({
      urls: [url],
      secret: SECRET,
      stream,
      logger: captureLogs().logger,
      consumer: 'c',
      timeoutMs: 5000,
      retryBaseMs: 10,
      retryMaxMs: 50,
      pollMs: 20,
    });
    await delivery.start();
    const event = stampEvent(
      {
        type: 'login.failed',
        actor: { type: 'anonymous', ip: '203.0.113.9' },
        subject: { type: 'user', email: 'x@example.com' },
        data: { reason: 'wrong_password' },
      },
      { clock: systemClock, random: cryptoRandom },
    );
    try {
      await stream.append(toStreamFields(event));
      delivery.notify();
      await eventually(() => output.includes(event.id));
      expect(output.trim()).toBe(`login.failed ${event.id} {"type":"user","email":"x@example.com"}`);
    } finally {
      await delivery.stop();
    }
    // Replaying the same signed request: accepted (2xx) and not handled twice.
    const body = JSON.stringify(event);
    const { Webhook } = await import('standardwebhooks');
    const now = new Date();
    const headers = {
      'webhook-id': event.id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': new Webhook(SECRET).sign(event.id, now, body),
    };
    expect((await fetch(url, { method: 'POST', headers, body })).status).toBe(204);
    const altered = JSON.stringify({ ...event, data: { reason: 'unknown_email' } });
    expect((await fetch(url, { method: 'POST', headers, body: altered })).status).toBe(400);
    const forged = { ...headers, 'webhook-signature': new Webhook(newWebhookSecret()).sign(event.id, now, body) };
    expect((await fetch(url, { method: 'POST', headers: forged, body })).status).toBe(400);
    expect(output.trim().split('\n')).toHaveLength(1);
  });
});
