import type { Clock } from '../../clock.js';
import type { ConsentRecord, ConsentStore } from '../types.js';
import { pingAs, translate } from './errors.js';
import type { ConsentDocument, MongoModels } from './models.js';

const STORE = 'consents';

/** Consents in MongoDB, one document per user and client (unique index `userId_1_clientId_1`). */
export function createMongoConsentStore({
  models,
  clock,
  ping,
}: {
  models: Pick<MongoModels, 'Consent'>;
  clock: Clock;
  ping: () => Promise<void>;
}): ConsentStore {
  const { Consent } = models;
  // $eq: the values are matched literally even if a caller ever passes an operator object.
  const one = (userId: string, clientId: string) => ({ userId: { $eq: userId }, clientId: { $eq: clientId } });

  return {
    async grant(userId, clientId, scopes) {
      const now = new Date(clock.now());
      // One atomic upsert: concurrent grants each add their scopes, none is lost.
      const doc = await translate(STORE, () =>
        Consent.findOneAndUpdate(
          one(userId, clientId),
          { $addToSet: { scopes: { $each: [...scopes] } }, $set: { updatedAt: now }, $setOnInsert: { userId, clientId, createdAt: now } },
          { upsert: true, returnDocument: 'after', timestamps: false },
        )
          .lean<ConsentDocument>()
          .exec(),
      );
      return toRecord(doc!);
    },
    async find(userId, clientId) {
      const doc = await translate(STORE, () => Consent.findOne(one(userId, clientId)).lean<ConsentDocument>().exec());
      return doc ? toRecord(doc) : null;
    },
    async listByUser(userId) {
      const docs = await translate(STORE, () =>
        Consent.find({ userId: { $eq: userId } })
          .sort({ updatedAt: -1 })
          .lean<ConsentDocument[]>()
          .exec(),
      );
      return docs.map(toRecord);
    },
    async revoke(userId, clientId) {
      const result = await translate(STORE, () => Consent.deleteOne(one(userId, clientId)).exec());
      return result.deletedCount > 0;
    },
    ping: () => pingAs(STORE, ping),
  };
}

function toRecord(doc: ConsentDocument): ConsentRecord {
  return { userId: doc.userId, clientId: doc.clientId, scopes: [...(doc.scopes ?? [])], createdAt: doc.createdAt, updatedAt: doc.updatedAt };
}
