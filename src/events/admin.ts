/**
 * Events of the admin API: each call (`admin.action`), and a user disabled. The actor is
 * the admin client; none carries a secret (a rotated client secret, a new user's password).
 */
import type { UserRecord } from '../stores/types.js';
import type { Actor, NewEvent, Subject } from './types.js';

export interface AdminAudit {
  /** The operation, `<noun>.<verb>`: `client.update`, `user.disable`, `sessions.end`... */
  readonly action: string;
  /** The id of the client or user it was about; none for a listing. */
  readonly target?: string | undefined;
}

export const adminActor = (clientId: string): Actor => ({ type: 'client', id: clientId });

/** What an action is about: its target client or user, else (a listing) the acting client. */
function subjectOf(actorId: string, audit: AdminAudit): Subject {
  if (audit.target === undefined) return { type: 'client', id: actorId };
  return audit.action.startsWith('client.') ? { type: 'client', id: audit.target } : { type: 'user', id: audit.target };
}

export function adminAction(actorId: string, audit: AdminAudit, outcome: 'ok' | 'refused', status: number): NewEvent {
  return {
    type: 'admin.action',
    actor: adminActor(actorId),
    subject: subjectOf(actorId, audit),
    data: { action: audit.action, target: audit.target ?? null, outcome, status },
  };
}

export function userDisabled(actorId: string, user: Pick<UserRecord, 'id' | 'email'>, sessionsEnded: number): NewEvent {
  return {
    type: 'user.disabled',
    actor: adminActor(actorId),
    subject: { type: 'user', id: user.id, email: user.email },
    data: { user_id: user.id, sessions_ended: sessionsEnded },
  };
}
