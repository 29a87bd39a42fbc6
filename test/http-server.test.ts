/**
 * The HTTP server around the app (src/http-server.ts) on a real socket: what a client sees
 * when its request is refused while it is still sending.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Listening } from '../src/http-server.js';
import { startTestService, type TestService } from './support/app.js';

let service: TestService;
let listening: Listening;
/** The same app with a short linger, to see its bounds. */
let brief: Listening;
beforeAll(async () => {
  service = await startTestService({ BODY_LIMIT: '65536' });
  const config = { ...service.config, host: '127.0.0.1', port: 0 };
  listening = await listen(service.callback, config, service.logs.logger);
  brief = await listen(service.callback, config, service.logs.logger, { linger: { ms: 400, bytes: 1024 * 1024 } });
});
afterAll(async () => {
  await listening?.close();
  await brief?.close();
  await service?.close();
});

const portOf = (server: Listening) => Number(new URL(server.url).port);

interface Outcome {
  /** Everything the server sent before the connection ended. */
  received: string;
  /** How the upload ended: null when every byte was written, else the socket error's code. */
  writeError: string | null;
}

/**
 * A client that writes its whole body before it reads the answer, as simple HTTP clients
 * do: `bytes` of a chunked body in 64 KiB chunks, respecting back-pressure, and only then
 * (or once writing failed) whatever the server said.
 */
function streamChunked(port: number, bytes: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let writeError: string | null = null;
    socket.setEncoding('latin1');
    const read = () => socket.on('data', (data: string) => (received += data));
    socket.on('error', (err: NodeJS.ErrnoException) => (writeError ??= err.code ?? err.message));
    socket.on('close', () => resolve({ received, writeError }));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    socket.once('connect', async () => {
      socket.write('POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let sent = 0; sent < bytes && !socket.destroyed; sent += chunk.length) {
        if (!socket.write(frame)) await new Promise((next) => (socket.once('drain', next), socket.once('close', next)));
      }
      if (!socket.destroyed) socket.end('0\r\n\r\n');
      read();
    });
  });
}

describe('a body over BODY_LIMIT', () => {
  it('gets its 413 even when the client streams a chunked body far past the limit before reading (issue 23 item 3)', async () => {
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => streamChunked(portOf(listening), 8 * 1024 * 1024)));
    const answered = outcomes.filter((outcome) => outcome.received.startsWith('HTTP/1.1 413 '));
    expect({ answered: answered.length, errors: outcomes.map((outcome) => outcome.writeError) }).toEqual({
      answered: 10,
      errors: Array(10).fill(null),
    });
    for (const { received } of answered) {
      expect(received).toMatch(/\r\nConnection: close\r\n/i);
      expect(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
    }
  });

  it('is read and discarded for a bounded size only: an endless upload is cut off', async () => {
    const outcome = await streamChunked(portOf(brief), 256 * 1024 * 1024);
    expect(outcome.writeError).toMatch(/EPIPE|ECONNRESET/);
  });

  it('is read and discarded for a bounded time only: a trickling upload is closed, its answer delivered', async () => {
    // Half-open allowed, so the client goes on sending after the server ended its side.
    const socket = connect({ port: portOf(brief), host: '127.0.0.1', allowHalfOpen: true });
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => (received += data));
    await new Promise((resolve) => socket.once('connect', resolve));
    const started = performance.now();
    socket.write('POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    socket.write(`20000\r\n${'x'.repeat(0x20000)}\r\n`);
    const cutOff = new Promise<number>((resolve) => {
      socket.once('error', () => resolve(performance.now() - started));
      socket.once('close', () => resolve(performance.now() - started));
    });
    const trickle = setInterval(() => socket.write('10\r\n0123456789abcdef\r\n'), 50);
    try {
      const elapsed = await cutOff;
      expect(received).toMatch(/^HTTP\/1\.1 413 /);
      expect(elapsed).toBeGreaterThan(300);
      expect(elapsed).toBeLessThan(3_000);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });
});
