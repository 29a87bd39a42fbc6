import type { Clock } from '../../clock.js';
import { DEFAULT_ID_TOKEN_SIGNING_ALG } from '../../tokens/id-token.js';
import { DuplicateKeyError, type ClientChanges, type ClientRecord, type ClientStore, type NewClient } from '../types.js';

/**
 * OAuth clients in process memory, for the embedded dev mode. `create` checks and inserts
 * without awaiting, so concurrent creates of one client_id yield exactly one success.
 */
export function createMemoryClientStore({ clock }: { clock: Clock }): ClientStore {
  const byId = new Map<string, ClientRecord>();

  return {
    async create(client: NewClient) {
      if (byId.has(client.clientId)) throw new DuplicateKeyError('client_id');
      const record: ClientRecord = Object.freeze({
        clientId: client.clientId,
        name: client.name,
        type: client.type,
        firstParty: client.firstParty,
        grantTypes: Object.freeze([...client.grantTypes]),
        scopes: Object.freeze([...client.scopes]),
        audiences: Object.freeze([...client.audiences]),
        permissions: Object.freeze([...client.permissions]),
        cookieMode: client.cookieMode,
        redirectUris: Object.freeze([...(client.redirectUris ?? [])]),
        requirePar: client.requirePar ?? false,
        postLogoutRedirectUris: Object.freeze([...(client.postLogoutRedirectUris ?? [])]),
        backchannelLogoutUri: client.backchannelLogoutUri,
        idTokenSignedResponseAlg: client.idTokenSignedResponseAlg ?? DEFAULT_ID_TOKEN_SIGNING_ALG,
        secretHash: client.secretHash,
        createdAt: new Date(clock.now()),
      });
      byId.set(record.clientId, record);
      return copy(record);
    },

    async findById(clientId) {
      const record = byId.get(clientId);
      return record ? copy(record) : null;
    },

    async list({ limit, after }) {
      const ids = [...byId.keys()].filter((id) => after === undefined || id > after).sort();
      return ids.slice(0, Math.max(0, limit)).map((id) => copy(byId.get(id)!));
    },

    async update(clientId, changes: ClientChanges) {
      const record = byId.get(clientId);
      if (!record) return null;
      const defined = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined)) as ClientChanges;
      const updated: ClientRecord = Object.freeze({
        ...record,
        ...defined,
        grantTypes: Object.freeze([...(defined.grantTypes ?? record.grantTypes)]),
        scopes: Object.freeze([...(defined.scopes ?? record.scopes)]),
        audiences: Object.freeze([...(defined.audiences ?? record.audiences)]),
        redirectUris: Object.freeze([...(defined.redirectUris ?? record.redirectUris)]),
        postLogoutRedirectUris: Object.freeze([...(defined.postLogoutRedirectUris ?? record.postLogoutRedirectUris)]),
      });
      byId.set(clientId, updated);
      return copy(updated);
    },

    async delete(clientId) {
      return byId.delete(clientId);
    },

    async ping() {},
  };
}

/** The Date is the only mutable part of a frozen record. */
function copy(record: ClientRecord): ClientRecord {
  return { ...record, createdAt: new Date(record.createdAt.getTime()) };
}
