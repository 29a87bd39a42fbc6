/**
 * A real SMTP server for tests: smtp-server (from the nodemailer project) on a free loopback
 * port, every message parsed with mailparser and kept. `stop` closes it; `listen` again on
 * the same port (an outage that ends). Optional STARTTLS with a self-signed certificate made
 * by `selfSignedCertificate` (tls.ts: openssl, offline).
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { freePort } from './processes.js';

export interface ReceivedMail {
  readonly parsed: ParsedMail;
  /** The session was upgraded with STARTTLS (or was TLS from the start). */
  readonly secure: boolean;
  readonly envelopeTo: string[];
}

export interface TestSmtp {
  readonly port: number;
  readonly url: string;
  readonly received: ReceivedMail[];
  /** Resolves once at least `count` messages arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  listen(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestSmtp(options: { listen?: boolean; tls?: { key: string; cert: string } } = {}): Promise<TestSmtp> {
  const port = await freePort();
  const received: ReceivedMail[] = [];
  let server: SMTPServer | undefined;

  const make = () =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: options.tls ? [] : ['STARTTLS'],
      ...(options.tls && { key: options.tls.key, cert: options.tls.cert }),
      logger: false,
      onData(stream, session, callback) {
        simpleParser(stream).then(
          (parsed) => {
            received.push({ parsed, secure: session.secure, envelopeTo: session.envelope.rcptTo.map((rcpt) => rcpt.address) });
            callback();
          },
          (err: Error) => callback(err),
        );
      },
    });

  const smtp: TestSmtp = {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`SMTP: ${received.length} of ${count} messages after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return received;
    },
    async listen() {
      if (server) return;
      server = make();
      server.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, '127.0.0.1', () => resolve());
      });
    },
    async stop() {
      const closing = server;
      server = undefined;
      if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
  };
  if (options.listen !== false) await smtp.listen();
  return smtp;
}
