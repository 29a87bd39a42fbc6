import type { Clock } from '../../clock.js';
import { DEFAULT_ID_TOKEN_SIGNING_ALG, isIdTokenSigningAlg } from '../../tokens/id-token.js';
import type { ClientChanges, ClientRecord, ClientStore, NewClient } from '../types.js';
import { pingAs, translate } from './errors.js';
import type { ClientDocument, MongoModels } from './models.js';

const STORE = 'clients';

export function createMongoClientStore({ models, clock, ping }: { models: Pick<MongoModels, 'Client'>; clock: Clock; ping: () => Promise<void> }): ClientStore {
  const { Client } = models;

  return {
    async create(client: NewClient) {
      const created = await translate(
        STORE,
        () =>
          new Client({
            clientId: client.clientId,
            name: client.name,
            type: client.type,
            firstParty: client.firstParty,
            grantTypes: [...client.grantTypes],
            scopes: [...client.scopes],
            audiences: [...client.audiences],
            permissions: [...client.permissions],
            cookieMode: client.cookieMode,
            redirectUris: [...(client.redirectUris ?? [])],
            requirePar: client.requirePar ?? false,
            postLogoutRedirectUris: [...(client.postLogoutRedirectUris ?? [])],
            backchannelLogoutUri: client.backchannelLogoutUri,
            idTokenSignedResponseAlg: client.idTokenSignedResponseAlg ?? DEFAULT_ID_TOKEN_SIGNING_ALG,
            secretHash: client.secretHash,
            createdAt: new Date(clock.now()),
          }).save({ timestamps: false }),
        'client_id',
      );
      return toRecord(created.toObject());
    },

    async findById(clientId) {
      if (typeof clientId !== 'string') return null;
      // $eq: the value is matched literally even if a caller ever passes an operator object.
      const doc = await translate(STORE, () =>
        Client.findOne({ clientId: { $eq: clientId } })
          .lean<ClientDocument>()
          .exec(),
      );
      return doc ? toRecord(doc) : null;
    },

    async list({ limit, after }) {
      if (after !== undefined && typeof after !== 'string') return [];
      const filter = after === undefined ? {} : { clientId: { $gt: after } };
      const docs = await translate(STORE, () => Client.find(filter).sort({ clientId: 1 }).limit(Math.max(1, limit)).lean<ClientDocument[]>().exec());
      return limit > 0 ? docs.map(toRecord) : [];
    },

    async update(clientId, changes: ClientChanges) {
      if (typeof clientId !== 'string') return null;
      const set: Record<string, unknown> = {};
      for (const [field, value] of Object.entries(changes)) {
        if (value !== undefined) set[field] = Array.isArray(value) ? [...(value as unknown[])] : value;
      }
      const doc = await translate(STORE, () =>
        (Object.keys(set).length === 0
          ? Client.findOne({ clientId: { $eq: clientId } })
          : Client.findOneAndUpdate({ clientId: { $eq: clientId } }, { $set: set }, { returnDocument: 'after', timestamps: false })
        )
          .lean<ClientDocument>()
          .exec(),
      );
      return doc ? toRecord(doc) : null;
    },

    async delete(clientId) {
      if (typeof clientId !== 'string') return false;
      const result = await translate(STORE, () => Client.deleteOne({ clientId: { $eq: clientId } }).exec());
      return result.deletedCount === 1;
    },

    ping: () => pingAs(STORE, ping),
  };
}

/**
 * `lean()` applies no schema defaults: a document written without them (by hand, by a
 * migration, by an older version) reads as the schema would have filled it in.
 */
function toRecord(doc: ClientDocument): ClientRecord {
  return {
    clientId: doc.clientId,
    name: doc.name,
    type: doc.type,
    firstParty: doc.firstParty === true,
    grantTypes: [...(doc.grantTypes ?? [])],
    scopes: [...(doc.scopes ?? [])],
    audiences: [...(doc.audiences ?? [])],
    permissions: [...(doc.permissions ?? [])],
    cookieMode: doc.cookieMode === true,
    redirectUris: [...(doc.redirectUris ?? [])],
    requirePar: doc.requirePar === true,
    postLogoutRedirectUris: [...(doc.postLogoutRedirectUris ?? [])],
    backchannelLogoutUri: doc.backchannelLogoutUri ?? undefined,
    // A document written before the field (or by hand with a value we cannot sign): the default, never `none`.
    idTokenSignedResponseAlg: isIdTokenSigningAlg(doc.idTokenSignedResponseAlg) ? doc.idTokenSignedResponseAlg : DEFAULT_ID_TOKEN_SIGNING_ALG,
    secretHash: doc.secretHash ?? undefined,
    createdAt: doc.createdAt,
  };
}
