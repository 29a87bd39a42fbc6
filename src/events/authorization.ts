/** Events of the authorization code flow: a user allowed a client (a code was issued), or refused it. */
import type { AuthorizationCodes } from '../oauth/authorization-codes.js';
import type { UserRecord } from '../stores/types.js';
import type { EventSink, NewEvent } from './types.js';

type Decision = 'authorization.granted' | 'authorization.denied';

function decision(type: Decision, user: Pick<UserRecord, 'id' | 'email'>, clientId: string, scope: string): NewEvent {
  return { type, actor: { type: 'user', id: user.id }, subject: { type: 'user', id: user.id, email: user.email }, data: { client_id: clientId, scope } };
}

export const authorizationDenied = (user: Pick<UserRecord, 'id' | 'email'>, clientId: string, scope: string): NewEvent =>
  decision('authorization.denied', user, clientId, scope);

/** The code issuer, emitting `authorization.granted` for each code (by consent now, or one remembered, or a first-party client). */
export function withGrantEvents<C extends Pick<AuthorizationCodes, 'issue'>>(codes: C, events: EventSink): C {
  return {
    ...codes,
    async issue(request, user, authTime) {
      const code = await codes.issue(request, user, authTime);
      events.emit(decision('authorization.granted', user, request.clientId, request.scope));
      return code;
    },
  };
}
