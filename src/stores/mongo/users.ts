import { Types } from 'mongoose';
import type { Clock } from '../../clock.js';
import type { NewUser, UserRecord, UserStore } from '../types.js';
import { pingAs, translate } from './errors.js';
import type { MongoModels, UserDocument } from './models.js';

const STORE = 'users';

/** Ids are the lowercase hex of the ObjectId; anything else names no user. */
const ID_PATTERN = /^[0-9a-f]{24}$/;

export function createMongoUserStore({ models, clock, ping }: { models: Pick<MongoModels, 'User'>; clock: Clock; ping: () => Promise<void> }): UserStore {
  const { User } = models;

  return {
    async create(user: NewUser) {
      const now = new Date(clock.now());
      const created = await translate(
        STORE,
        () =>
          new User({
            email: user.email,
            name: user.name,
            passwordHash: user.passwordHash,
            roles: [...(user.roles ?? [])],
            disabled: false,
            emailVerified: user.emailVerified ?? false,
            passwordChangedAt: now,
            createdAt: now,
            updatedAt: now,
          }).save({ timestamps: false }),
        'email',
      );
      return toRecord(created.toObject());
    },

    async findById(id) {
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) return null;
      const doc = await translate(STORE, () => User.findById(new Types.ObjectId(id)).lean<UserDocument>().exec());
      return doc ? toRecord(doc) : null;
    },

    async findByEmail(email) {
      if (typeof email !== 'string') return null;
      // $eq: the value is matched literally even if a caller ever passes an operator object.
      const doc = await translate(STORE, () =>
        User.findOne({ email: { $eq: email } })
          .lean<UserDocument>()
          .exec(),
      );
      return doc ? toRecord(doc) : null;
    },

    async findCredentials(email) {
      if (typeof email !== 'string') return null;
      const doc = await translate(STORE, () =>
        User.findOne({ email: { $eq: email } })
          .select('+passwordHash')
          .lean<UserDocument>()
          .exec(),
      );
      return doc ? { user: toRecord(doc), passwordHash: doc.passwordHash } : null;
    },

    async getPasswordHash(id) {
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) return null;
      const doc = await translate(STORE, () => User.findById(new Types.ObjectId(id)).select('+passwordHash').lean<Pick<UserDocument, 'passwordHash'>>().exec());
      return doc?.passwordHash ?? null;
    },

    async setPasswordHash(id, passwordHash, { expected, change }) {
      if (typeof id !== 'string' || !ID_PATTERN.test(id) || typeof expected !== 'string') return false;
      const set: Partial<UserDocument> = { passwordHash };
      if (change) {
        set.passwordChangedAt = change.at;
        set.passwordChangedBy = change.by;
      }
      const result = await translate(STORE, () => User.updateOne({ _id: new Types.ObjectId(id), passwordHash: { $eq: expected } }, { $set: set }).exec());
      return result.matchedCount === 1;
    },

    async recordSignOut(id) {
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) return;
      await translate(STORE, () => User.updateOne({ _id: new Types.ObjectId(id) }, { $inc: { signOuts: 1 } }).exec());
    },

    async markEmailVerified(id, email) {
      if (typeof id !== 'string' || !ID_PATTERN.test(id) || typeof email !== 'string') return false;
      const result = await translate(STORE, () =>
        User.updateOne(
          { _id: new Types.ObjectId(id), email: { $eq: email } },
          { $set: { emailVerified: true, updatedAt: new Date(clock.now()) } },
          { timestamps: false },
        ).exec(),
      );
      return result.matchedCount === 1;
    },

    async changeEmail(id, from, to) {
      if (typeof id !== 'string' || !ID_PATTERN.test(id) || typeof from !== 'string' || typeof to !== 'string') return false;
      const result = await translate(
        STORE,
        () =>
          User.updateOne(
            { _id: new Types.ObjectId(id), email: { $eq: from } },
            { $set: { email: to, emailVerified: true, updatedAt: new Date(clock.now()) } },
            { timestamps: false },
          ).exec(),
        'email',
      );
      return result.matchedCount === 1;
    },

    async update(id, changes) {
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) return null;
      const set: Partial<UserDocument> = { updatedAt: new Date(clock.now()) };
      if (changes.roles !== undefined) set.roles = [...changes.roles];
      if (changes.disabled !== undefined) set.disabled = changes.disabled;
      if (changes.name !== undefined) set.name = changes.name;
      const doc = await translate(STORE, () =>
        User.findOneAndUpdate({ _id: new Types.ObjectId(id) }, { $set: set }, { returnDocument: 'after', timestamps: false })
          .lean<UserDocument>()
          .exec(),
      );
      return doc ? toRecord(doc) : null;
    },

    async delete(id) {
      if (typeof id !== 'string' || !ID_PATTERN.test(id)) return false;
      const result = await translate(STORE, () => User.deleteOne({ _id: new Types.ObjectId(id) }).exec());
      return result.deletedCount === 1;
    },

    async listByEmailPrefix(prefix, { limit, after }) {
      if (typeof prefix !== 'string' || (after !== undefined && typeof after !== 'string') || limit <= 0) return [];
      // A range on the unique email index rather than a regex: nothing in the prefix is a pattern.
      // U+FFFF sorts after every character an address holds.
      const lower = after !== undefined && after >= prefix ? { $gt: after } : { $gte: prefix };
      const docs = await translate(STORE, () =>
        User.find({ email: { ...lower, $lt: `${prefix}\uffff` } })
          .sort({ email: 1 })
          .limit(limit)
          .lean<UserDocument[]>()
          .exec(),
      );
      return docs.map(toRecord);
    },

    ping: () => pingAs(STORE, ping),
  };
}

/**
 * `lean()` applies no schema defaults: a document written without them (by hand, by a
 * migration, by an older version) reads as the schema would have filled it in.
 */
function toRecord(doc: Omit<UserDocument, 'passwordHash'> & { passwordHash?: string }): UserRecord {
  return {
    id: doc._id.toHexString(),
    email: doc.email,
    name: doc.name ?? undefined,
    roles: [...(doc.roles ?? [])],
    // Any truthy value a hand-written document holds disables, as the schema's cast would: fail closed.
    disabled: Boolean(doc.disabled),
    // Absent on documents written before verification existed: not verified.
    emailVerified: doc.emailVerified === true,
    passwordChangedAt: doc.passwordChangedAt,
    passwordChangedBy: doc.passwordChangedBy ?? undefined,
    signOuts: typeof doc.signOuts === 'number' ? doc.signOuts : 0,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}
