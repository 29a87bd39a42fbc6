/** `client.created`: what the client may do, never its secret (nor the secret's hash). */
import type { ClientRecord } from '../stores/types.js';
import type { NewEvent } from './types.js';

export function clientCreated(client: ClientRecord, by: string): NewEvent {
  return {
    type: 'client.created',
    actor: { type: 'operator', id: by },
    subject: { type: 'client', id: client.clientId },
    data: { name: client.name, client_type: client.type, first_party: client.firstParty, grant_types: [...client.grantTypes], scopes: [...client.scopes] },
  };
}
