/**
 * Where a mail goes once a worker takes it from the queue: an SMTP server (nodemailer), or
 * in dev mode without SMTP_URL the terminal and a list of the last messages (GET /dev/mail).
 */
import nodemailer from 'nodemailer';

/** A message ready to send, as the queue carries it. */
export interface OutgoingMail {
  readonly kind: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  /** The link the mail carries, if any (printed first in dev mode). */
  readonly link?: string | undefined;
  /** Fixed when queued, the same on every attempt: a receiver can drop a duplicate by it. */
  readonly messageId: string;
  /** ms since epoch, when queued. */
  readonly queuedAt: number;
}

export interface MailTransport {
  /** Resolves once the server accepted the message; rejects otherwise (the worker retries). */
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

export interface SmtpOptions {
  /** `smtp://user:pass@host:587` (STARTTLS when offered; `?requireTLS=true` to insist) or `smtps://…:465`. */
  readonly url: string;
  readonly from: string;
  /** PEM of a CA to trust besides the system's (SMTP_CA_FILE). */
  readonly ca?: string | undefined;
  /** Milliseconds a whole attempt may take; nodemailer's own timeouts are set inside it. */
  readonly timeoutMs: number;
}

export function createSmtpTransport(options: SmtpOptions): MailTransport {
  const step = Math.max(1000, Math.floor(options.timeoutMs / 3));
  const transporter = nodemailer.createTransport({
    url: options.url,
    connectionTimeout: step,
    greetingTimeout: step,
    socketTimeout: step,
    ...(options.ca !== undefined && { tls: { ca: options.ca } }),
  });
  return {
    async send(mail) {
      await transporter.sendMail({
        from: options.from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        messageId: mail.messageId,
        date: new Date(mail.queuedAt),
      });
    },
    close: () => transporter.close(),
  };
}

/** A message as the dev mail view shows it. */
export interface DevMail {
  readonly id: string;
  readonly kind: string;
  readonly to: string;
  readonly subject: string;
  readonly link: string | null;
  readonly text: string;
  readonly sentAt: string;
}

export const DEV_MAIL_KEPT = 50;

/** Dev mode without SMTP_URL: each message printed (its link first) and the last 50 kept. */
export function createDevTransport({ print, clock }: { print: (text: string) => void; clock: { now(): number } }): MailTransport & {
  recent(): readonly DevMail[];
} {
  const kept: DevMail[] = [];
  return {
    async send(mail) {
      const rule = '-'.repeat(60);
      const lines = [rule, ...(mail.link ? [`mail link: ${mail.link}`] : []), `to: ${mail.to}`, `subject: ${mail.subject}`, '', mail.text.trimEnd(), rule, ''];
      print(lines.join('\n'));
      kept.unshift({
        id: mail.messageId,
        kind: mail.kind,
        to: mail.to,
        subject: mail.subject,
        link: mail.link ?? null,
        text: mail.text,
        sentAt: new Date(clock.now()).toISOString(),
      });
      kept.length = Math.min(kept.length, DEV_MAIL_KEPT);
    },
    close() {},
    recent: () => [...kept],
  };
}
