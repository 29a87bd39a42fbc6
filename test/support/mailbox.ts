/**
 * The dev-mode mailbox of a test service (GET /dev/mail), after every background mail step
 * has run and the queue is drained: the messages, newest first, and their links and tokens.
 */
import request from 'supertest';
import type { TestService } from './app.js';

export interface DevMessage {
  readonly id: string;
  readonly kind: string;
  readonly to: string;
  readonly subject: string;
  readonly link: string | null;
  readonly text: string;
}

export async function mailbox(service: TestService): Promise<DevMessage[]> {
  await service.recovery.settled();
  await service.mail.flush();
  const response = await request(service.callback).get('/dev/mail').expect(200);
  return response.body.messages as DevMessage[];
}

/** The newest message of `kind` to `to` (throws when there is none). */
export async function lastMail(service: TestService, to: string, kind: string): Promise<DevMessage> {
  const found = (await mailbox(service)).find((message) => message.to === to && message.kind === kind);
  if (!found) throw new Error(`no ${kind} mail to ${to}`);
  return found;
}

export const tokenOf = (message: DevMessage): string => new URL(message.link!).searchParams.get('token')!;
