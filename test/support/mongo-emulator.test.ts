/**
 * The emulator through the real driver and mongoose: what the stores rely on behaves as
 * mongod behaves, and what it lacks fails loudly.
 */
import { connect as connectTcp } from 'node:net';
import { BSON, type Document } from 'bson';
import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { implementedCommands, startMongoEmulator, type MongoEmulator } from './mongo-emulator/index.js';

interface AccountDoc {
  email: string;
  name?: string;
  n: number;
  tags: string[];
  visits?: number;
  createdBy?: string;
}

let emulator: MongoEmulator;
let connection: Connection;
let Accounts: Model<AccountDoc>;
const commands: string[] = [];

const accountSchema = new Schema<AccountDoc>(
  { email: { type: String, required: true }, name: String, n: { type: Number, default: 0 }, tags: [String], visits: Number, createdBy: String },
  { autoIndex: false, autoCreate: false, versionKey: false },
);
accountSchema.index({ email: 1 }, { unique: true });

beforeAll(async () => {
  emulator = await startMongoEmulator();
  connection = mongoose.createConnection(`${emulator.uri}/emulator_test`, { serverSelectionTimeoutMS: 2_000, monitorCommands: true });
  await connection.asPromise();
  connection.getClient().on('commandStarted', (event) => commands.push(event.commandName));
  Accounts = connection.model<AccountDoc>('Account', accountSchema);
});

afterAll(async () => {
  await connection?.close();
  await emulator?.stop();
});

beforeEach(async () => {
  await connection.db!.dropDatabase();
  await Accounts.createIndexes();
  commands.length = 0;
});

describe('mongo emulator through mongoose', () => {
  it('round-trips documents: insert, find with filter/sort/projection, update, delete', async () => {
    const Model = Accounts;
    await Model.create([
      { email: 'b@x', n: 2, tags: ['red'] },
      { email: 'a@x', n: 1, tags: [] },
      { email: 'c@x', n: 3, tags: ['red', 'blue'] },
    ]);

    const sorted = await Model.find({ n: { $gte: 2 } })
      .sort({ n: -1 })
      .select({ email: 1, _id: 0 })
      .lean();
    expect(sorted).toEqual([{ email: 'c@x' }, { email: 'b@x' }]);
    expect(await Model.find({ tags: 'red' }).countDocuments()).toBe(2);

    const updated = await Model.updateOne({ email: 'a@x' }, { $set: { name: 'Ann' }, $inc: { n: 10 }, $push: { tags: 'green' } });
    expect(updated).toMatchObject({ matchedCount: 1, modifiedCount: 1 });
    expect(await Model.findOne({ email: 'a@x' }).lean()).toMatchObject({ name: 'Ann', n: 11, tags: ['green'] });

    const unchanged = await Model.updateOne({ email: 'a@x' }, { $set: { name: 'Ann' } });
    expect(unchanged).toMatchObject({ matchedCount: 1, modifiedCount: 0 });

    await Model.updateMany({}, { $pull: { tags: 'red' }, $unset: { name: '' } });
    expect((await Model.find().sort({ email: 1 }).lean()).map((doc) => [doc.email, doc.tags, doc.name])).toEqual([
      ['a@x', ['green'], undefined],
      ['b@x', [], undefined],
      ['c@x', ['blue'], undefined],
    ]);

    expect(await Model.deleteOne({ email: 'b@x' })).toMatchObject({ deletedCount: 1 });
    expect(await Model.deleteMany({ n: { $gt: 0 } })).toMatchObject({ deletedCount: 2 });
    expect(await Model.estimatedDocumentCount()).toBe(0);
  });

  it('answers _id equalities from the _id index exactly as a scan would', async () => {
    const [first] = await Accounts.create([
      { email: 'a@x', n: 1 },
      { email: 'b@x', n: 2 },
    ]);
    expect(await Accounts.findById(first!._id).lean()).toMatchObject({ email: 'a@x' });
    expect(await Accounts.findById(new mongoose.Types.ObjectId()).lean()).toBeNull();
    // Not a pure _id equality: the scan answers, with the same meaning.
    expect(await Accounts.findOne({ _id: first!._id, email: 'b@x' }).lean()).toBeNull();
    expect(await Accounts.find({ _id: { $in: [first!._id] } }).countDocuments()).toBe(1);
    const raw = connection.db!.collection('raw');
    await raw.insertMany([
      { _id: 'k1' as never, v: 1 },
      { _id: 7 as never, v: 2 },
      { _id: 2.5 as never, v: 3 },
    ]);
    expect(await raw.findOne({ _id: 'k1' as never })).toEqual({ _id: 'k1', v: 1 });
    expect(await raw.findOne({ _id: 7 as never })).toEqual({ _id: 7, v: 2 });
    expect(await raw.findOne({ _id: 2.5 as never })).toEqual({ _id: 2.5, v: 3 });
    expect(await raw.findOne({ _id: 'k2' as never })).toBeNull();
    expect(await raw.findOne({ _id: /^k/ as never })).toEqual({ _id: 'k1', v: 1 });
  });

  it('reports a unique index violation as mongod does: code 11000 with keyPattern and keyValue', async () => {
    const Model = Accounts;
    await Model.create({ email: 'dup@x' });
    const error = await Model.create({ email: 'dup@x' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(mongoose.mongo.MongoServerError);
    expect(error).toMatchObject({
      code: 11000,
      keyPattern: { email: 1 },
      keyValue: { email: 'dup@x' },
      message: 'E11000 duplicate key error collection: emulator_test.accounts index: email_1 dup key: { email: "dup@x" }',
    });

    // The same through an update that would collide, and through findOneAndUpdate.
    await Model.create({ email: 'other@x' });
    await expect(Model.updateOne({ email: 'other@x' }, { $set: { email: 'dup@x' } })).rejects.toMatchObject({ code: 11000 });
    await expect(Model.findOneAndUpdate({ email: 'other@x' }, { $set: { email: 'dup@x' } })).rejects.toMatchObject({
      code: 11000,
      keyValue: { email: 'dup@x' },
    });
    expect(await Model.countDocuments({ email: 'dup@x' })).toBe(1);
  });

  it('refuses to build a unique index over existing duplicates', async () => {
    const raw = connection.db!.collection('people');
    await raw.insertMany([{ login: 'x' }, { login: 'x' }]);
    await expect(raw.createIndex({ login: 1 }, { unique: true })).rejects.toMatchObject({ code: 11000 });
    expect((await raw.listIndexes().toArray()).map((index) => index.name)).toEqual(['_id_']);
  });

  it('answers an unknown command with CommandNotFound instead of a silent success', async () => {
    await expect(connection.db!.command({ frobnicate: 1 })).rejects.toMatchObject({
      code: 59,
      codeName: 'CommandNotFound',
      message: "no such command: 'frobnicate'",
    });
  });

  it('refuses options it does not implement instead of ignoring them', async () => {
    await Accounts.create({ email: 'a@x' });
    await expect(Accounts.find({ email: 'A@X' }).collation({ locale: 'en', strength: 2 })).rejects.toMatchObject({ code: 40415 });
    await expect(connection.db!.collection('accounts').createIndex({ body: 'text' })).rejects.toMatchObject({ code: 67 });
    await expect(Accounts.find().hint('no_such_index')).rejects.toMatchObject({ code: 2 });
  });

  it('manages collections and indexes as mongod does', async () => {
    const db = connection.db!;
    await db.createCollection('things');
    await expect(db.createCollection('things')).rejects.toMatchObject({ code: 48, codeName: 'NamespaceExists' });
    expect((await db.listCollections({}, { nameOnly: true }).toArray()).map((info) => info.name).sort()).toEqual(['accounts', 'things']);

    const things = db.collection('things');
    await things.createIndex({ a: 1, b: -1 }, { name: 'a_b' });
    await expect(things.createIndex({ a: 1, b: -1 }, { name: 'other' })).rejects.toMatchObject({ code: 85 });
    await expect(things.createIndex({ c: 1 }, { name: 'a_b' })).rejects.toMatchObject({ code: 86 });
    expect((await things.listIndexes().toArray()).map((index) => index.name)).toEqual(['_id_', 'a_b']);
    await expect(things.dropIndex('_id_')).rejects.toMatchObject({ code: 72 });
    await expect(things.dropIndex('missing')).rejects.toMatchObject({ code: 27 });
    await things.dropIndex('a_b');
    expect((await things.listIndexes().toArray()).map((index) => index.name)).toEqual(['_id_']);

    await things.drop();
    await expect(things.listIndexes().toArray()).rejects.toMatchObject({ codeName: 'NamespaceNotFound' });
    const { databases } = await db.admin().listDatabases();
    expect(databases.map((info) => info.name)).toContain('emulator_test');
  });

  it('enforces sparse, partial and compound unique indexes over exactly the documents they cover', async () => {
    const db = connection.db!;
    const sparse = db.collection('sparse');
    await sparse.createIndex({ code: 1 }, { unique: true, sparse: true });
    await sparse.insertMany([{ n: 1 }, { n: 2 }, { code: 'x' }]);
    await expect(sparse.insertOne({ code: 'x' })).rejects.toMatchObject({ code: 11000 });

    const partial = db.collection('partial');
    await partial.createIndex({ email: 1 }, { unique: true, partialFilterExpression: { active: true } });
    await partial.insertMany([
      { email: 'a', active: false },
      { email: 'a', active: false },
      { email: 'a', active: true },
    ]);
    await expect(partial.insertOne({ email: 'a', active: true })).rejects.toMatchObject({ code: 11000 });

    const compound = db.collection('compound');
    await compound.createIndex({ tenant: 1, login: 1 }, { unique: true });
    await compound.insertMany([
      { tenant: 1, login: 'x' },
      { tenant: 2, login: 'x' },
    ]);
    await expect(compound.insertOne({ tenant: 1, login: 'x' })).rejects.toMatchObject({ code: 11000, keyValue: { tenant: 1, login: 'x' } });

    // Without sparse, a missing field is a null key: only one document may lack it.
    const plain = db.collection('plain');
    await plain.createIndex({ code: 1 }, { unique: true });
    await plain.insertOne({ n: 1 });
    await expect(plain.insertOne({ n: 2 })).rejects.toMatchObject({ code: 11000, keyValue: { code: null } });
  });

  it('fails an update mongod would fail rather than doing nothing', async () => {
    await Accounts.create({ email: 'a@x', createdBy: 'someone' });
    const raw = connection.db!.collection('accounts');
    // The driver's types reject these updates at compile time; mongod rejects them at run time.
    const update = (change: Document) => raw.updateOne({ email: 'a@x' }, change as never);
    await expect(update({ $inc: { createdBy: 1 } })).rejects.toMatchObject({ code: 14 });
    await expect(update({ $push: { email: 'b' } })).rejects.toMatchObject({ code: 2 });
    await expect(update({ $set: { 'email.local': 'b' } })).rejects.toMatchObject({ code: 28 });
    await expect(update({ $set: { n: 1 }, $inc: { n: 1 } })).rejects.toMatchObject({ code: 40 });
    await expect(update({ $set: { _id: 'new' } })).rejects.toMatchObject({ code: 66 });
    expect(await raw.findOne({ email: 'a@x' }, { projection: { _id: 0, email: 1, createdBy: 1 } })).toEqual({ email: 'a@x', createdBy: 'someone' });
  });

  it('serves a result set larger than one batch through getMore', async () => {
    const Model = Accounts;
    await Model.insertMany(Array.from({ length: 250 }, (_, i) => ({ email: `user${String(i).padStart(3, '0')}@x`, n: i })));
    commands.length = 0;

    const docs = await Model.find({}, { n: 1 }).sort({ n: -1 }).batchSize(40).lean();
    expect(docs.map((doc) => doc.n)).toEqual(Array.from({ length: 250 }, (_, i) => 249 - i));
    expect(commands.filter((name) => name === 'getMore').length).toBeGreaterThanOrEqual(6);

    // A default find: first batch of 101, then the rest.
    commands.length = 0;
    expect(await Model.find().lean()).toHaveLength(250);
    expect(commands.filter((name) => name === 'getMore')).toHaveLength(1);

    // Abandoning a cursor kills it on the server.
    const cursor = Model.find().batchSize(10).cursor();
    await cursor.next();
    await cursor.close();
    expect(commands).toContain('killCursors');
  });

  it('upserts: inserts from the filter and $setOnInsert, then updates without $setOnInsert', async () => {
    const Model = Accounts;
    const first = await Model.updateOne({ email: 'new@x' }, { $inc: { visits: 1 }, $setOnInsert: { createdBy: 'upsert' } }, { upsert: true });
    expect(first).toMatchObject({ matchedCount: 0, upsertedCount: 1 });
    const second = await Model.updateOne({ email: 'new@x' }, { $inc: { visits: 1 }, $setOnInsert: { createdBy: 'ignored' } }, { upsert: true });
    expect(second).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    const doc = await Model.findOne({ email: 'new@x' }).lean();
    expect(doc).toMatchObject({ email: 'new@x', visits: 2, createdBy: 'upsert' });
    expect(String(doc?._id)).toBe(String(first.upsertedId));
  });

  it('findOneAndUpdate: before/after images, sort, projection, upsert and remove', async () => {
    const Model = Accounts;
    await Model.create([
      { email: 'a@x', n: 1 },
      { email: 'b@x', n: 2 },
    ]);

    const before = await Model.findOneAndUpdate({}, { $inc: { n: 100 } }, { sort: { n: -1 }, returnDocument: 'before' }).lean();
    expect(before).toMatchObject({ email: 'b@x', n: 2 });
    // Through the driver: mongoose drops `_id: 0` from a findOneAndUpdate projection.
    const after = await connection
      .db!.collection('accounts')
      .findOneAndUpdate({ email: 'b@x' }, { $inc: { n: 1 } }, { returnDocument: 'after', projection: { n: 1, _id: 0 } });
    expect(after).toEqual({ n: 103 });

    const missing = await Model.findOneAndUpdate({ email: 'none@x' }, { $set: { n: 5 } }, { returnDocument: 'after' }).lean();
    expect(missing).toBeNull();
    const created = await Model.findOneAndUpdate({ email: 'up@x' }, { $set: { n: 5 } }, { upsert: true, returnDocument: 'after' }).lean();
    expect(created).toMatchObject({ email: 'up@x', n: 5 });

    const removed = await Model.findOneAndDelete({ email: 'a@x' }).lean();
    expect(removed).toMatchObject({ email: 'a@x', n: 1 });
    expect(await Model.countDocuments()).toBe(2);
  });

  it('aggregates and lists distinct values', async () => {
    const Model = Accounts;
    await Model.create([
      { email: 'a@x', n: 1, tags: ['x', 'y'] },
      { email: 'b@x', n: 2, tags: ['y'] },
      { email: 'c@x', n: 3 },
    ]);
    const grouped = await Model.aggregate<{ _id: null; total: number }>([{ $match: { n: { $gte: 2 } } }, { $group: { _id: null, total: { $sum: '$n' } } }]);
    expect(grouped).toEqual([{ _id: null, total: 5 }]);
    expect((await Model.distinct('tags')).sort()).toEqual(['x', 'y']);
  });

  it('refuses transactions as a standalone mongod does', async () => {
    const session = await connection.startSession();
    try {
      // The driver rewrites mongod's IllegalOperation into advice, keeping the original.
      const error = await session
        .withTransaction(() => Accounts.create([{ email: 't@x' }], { session }))
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(error).toMatchObject({
        message: expect.stringMatching(/does not support retryable writes/),
        originalError: { code: 20, codeName: 'IllegalOperation' },
      });
      expect(await Accounts.countDocuments({ email: 't@x' })).toBe(0);
    } finally {
      await session.endSession();
    }
  });

  it('accepts OP_MSG document sequences (kind 1) and a checksum trailer', async () => {
    const reply = await rawOpMsg(emulator.port, { insert: 'raw', $db: 'emulator_raw' }, { documents: [{ _id: 1 }, { _id: 2 }] });
    expect(reply).toMatchObject({ ok: 1, n: 2 });
    expect(await connection.useDb('emulator_raw').db!.collection('raw').countDocuments()).toBe(2);
    await connection.useDb('emulator_raw').db!.dropDatabase();
  });

  it('answers the legacy OP_QUERY handshake with OP_REPLY, and nothing else over OP_QUERY', async () => {
    const handshake = await rawOpQuery(emulator.port, 'admin.$cmd', { isMaster: 1, helloOk: true });
    expect(handshake.opCode).toBe(1);
    expect(handshake.reply).toMatchObject({ ok: 1, ismaster: true, helloOk: true, maxWireVersion: 21, logicalSessionTimeoutMinutes: 30 });
    const refused = await rawOpQuery(emulator.port, 'emulator_test.$cmd', { find: 'accounts' });
    expect(refused.reply).toMatchObject({ ok: 0, code: 352 });
  });

  it('closes a connection that sends a corrupt message, and keeps serving the others', async () => {
    const socket = connectTcp({ host: '127.0.0.1', port: emulator.port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const garbage = Buffer.alloc(32, 0xff);
    garbage.writeInt32LE(32, 0);
    garbage.writeInt32LE(2013, 12);
    socket.write(garbage);
    await closed;
    expect(await connection.db!.admin().command({ ping: 1 })).toMatchObject({ ok: 1 });
  });

  it('lists what it implements', () => {
    expect(implementedCommands()).toEqual(
      expect.arrayContaining(['hello', 'find', 'getMore', 'insert', 'update', 'delete', 'findAndModify', 'aggregate', 'createIndexes']),
    );
  });
});

/** Sends one OP_MSG with the checksum flag and a document sequence, and reads the reply body. */
async function rawOpMsg(port: number, body: Document, sequences: Record<string, Document[]>): Promise<Document> {
  const sections: Buffer[] = [Buffer.from([0]), Buffer.from(BSON.serialize(body))];
  for (const [identifier, docs] of Object.entries(sequences)) {
    const payload = Buffer.concat([Buffer.from(`${identifier}\0`), ...docs.map((doc) => Buffer.from(BSON.serialize(doc)))]);
    const size = Buffer.alloc(4);
    size.writeInt32LE(payload.length + 4);
    sections.push(Buffer.from([1]), size, payload);
  }
  const flags = Buffer.alloc(4);
  flags.writeUInt32LE(1); // checksumPresent
  const checksum = Buffer.alloc(4);
  const header = Buffer.alloc(16);
  const length = 16 + 4 + sections.reduce((sum, part) => sum + part.length, 0) + 4;
  header.writeInt32LE(length, 0);
  header.writeInt32LE(7, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(2013, 12);
  const received = await exchange(port, Buffer.concat([header, flags, ...sections, checksum]));
  expect(received.readInt32LE(8)).toBe(7); // responseTo
  expect(received.readInt32LE(12)).toBe(2013);
  return BSON.deserialize(received.subarray(21));
}

/** A legacy OP_QUERY command on `<db>.$cmd`, as drivers send their first handshake; returns the OP_REPLY document. */
async function rawOpQuery(port: number, namespace: string, query: Document): Promise<{ opCode: number; reply: Document }> {
  const name = Buffer.from(`${namespace}\0`);
  const body = Buffer.from(BSON.serialize(query));
  const message = Buffer.alloc(16 + 4 + name.length + 8);
  message.writeInt32LE(message.length + body.length, 0);
  message.writeInt32LE(9, 4);
  message.writeInt32LE(2004, 12);
  name.copy(message, 20);
  message.writeInt32LE(-1, 20 + name.length + 4); // numberToReturn
  const received = await exchange(port, Buffer.concat([message, body]));
  expect(received.readInt32LE(8)).toBe(9);
  expect(received.readInt32LE(32)).toBe(1); // numberReturned
  return { opCode: received.readInt32LE(12), reply: BSON.deserialize(received.subarray(36)) };
}

/** Writes one message on a fresh connection and reads one complete reply. */
async function exchange(port: number, message: Buffer): Promise<Buffer> {
  const socket = connectTcp({ host: '127.0.0.1', port });
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(message);
    let received = Buffer.alloc(0);
    for await (const chunk of socket) {
      received = Buffer.concat([received, chunk as Buffer]);
      if (received.length >= 4 && received.length >= received.readInt32LE(0)) break;
    }
    return received;
  } finally {
    socket.destroy();
  }
}
