/**
 * Command handlers. Each declares the fields it understands; any other field is refused
 * (as mongod's IDL parser does), and any command not listed answers `CommandNotFound`, so
 * a feature the emulator lacks fails a test loudly instead of passing it silently.
 * Handlers are synchronous: one command runs to completion before the next starts, which
 * makes every single-document write atomic, as in mongod.
 */
import { BSON, Long, type Document } from 'bson';
import { CursorRegistry } from './cursors.js';
import { CommandFailure, asFailure } from './errors.js';
import { aggregate, applyUpdate, projectDocuments, selectDocuments, upsertSeed, withId } from './query.js';
import {
  MAX_BSON_SIZE,
  canonicalKey,
  cloneDocument,
  compileQuery,
  distinctValues,
  formatValue,
  isPlainDocument,
  validateNamespace,
  type Collection,
  type IndexSpec,
  type Storage,
} from './storage.js';

/** MongoDB 7.0. The driver needs at least 9 (4.4); 21 enables nothing the emulator lacks. */
export const MAX_WIRE_VERSION = 21;
export const EMULATED_VERSION = '7.0.0';

export interface ServerState {
  readonly storage: Storage;
  readonly cursors: CursorRegistry;
}

interface Context extends ServerState {
  readonly db: string;
  readonly connectionId: number;
  readonly name: string;
}

interface Handler {
  /** Fields besides the command name and the generic ones; `'*'` accepts anything. */
  readonly fields: readonly string[] | '*';
  run(command: Document, context: Context): Document;
}

/** Fields the driver attaches to any command; they change nothing on a standalone server. */
const GENERIC_FIELDS = new Set([
  '$db',
  'lsid',
  '$clusterTime',
  '$readPreference',
  'readConcern',
  'writeConcern',
  'comment',
  'maxTimeMS',
  'apiVersion',
  'apiStrict',
  'apiDeprecationErrors',
  '$client',
]);
const TRANSACTION_FIELDS = ['txnNumber', 'autocommit', 'startTransaction'];

/** Runs one command document (an OP_MSG body) and returns the reply document. */
export function runCommand(command: Document, state: ServerState, connectionId: number): Document {
  const name = Object.keys(command)[0] ?? '';
  try {
    const handler = Object.hasOwn(HANDLERS, name) ? HANDLERS[name] : undefined;
    if (!handler) throw new CommandFailure(59, `no such command: '${name}'`);
    const db = command.$db;
    if (typeof db !== 'string') throw new CommandFailure(40571, 'OP_MSG requests require a $db argument');
    for (const field of TRANSACTION_FIELDS) {
      // What a standalone mongod answers to sessions with transactions or retryable writes.
      if (command[field] !== undefined) throw new CommandFailure(20, 'Transaction numbers are only allowed on a replica set member or mongos');
    }
    if (handler.fields !== '*') {
      for (const field of Object.keys(command).slice(1)) {
        if (!GENERIC_FIELDS.has(field) && !handler.fields.includes(field)) throw unknownField(`${name}.${field}`);
      }
    }
    return handler.run(command, { ...state, db, connectionId, name });
  } catch (err) {
    if (err instanceof CommandFailure) return err.toReply();
    return new CommandFailure(1, `emulator: ${err instanceof Error ? err.message : String(err)}`).toReply();
  }
}

/** The command names the emulator answers (aliases included). */
export function implementedCommands(): string[] {
  return Object.keys(HANDLERS).sort();
}

function unknownField(path: string): CommandFailure {
  return new CommandFailure(40415, `BSON field '${path}' is an unknown field (or one the test emulator does not support).`);
}

// ---------------------------------------------------------------- argument checks

type Kind = 'object' | 'array' | 'number' | 'bool' | 'string';

function bsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'double';
  if (typeof value === 'string') return 'string';
  if (isPlainDocument(value)) return 'object';
  return (value as { _bsontype?: string })._bsontype?.toLowerCase() ?? typeof value;
}

function matches(value: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'object':
      return isPlainDocument(value);
    case 'array':
      return Array.isArray(value);
    case 'number':
      return typeof value === 'number' || value instanceof Long;
    case 'bool':
      // mongod accepts numbers for boolean options (`upsert: 1`).
      return typeof value === 'boolean' || typeof value === 'number';
    case 'string':
      return typeof value === 'string';
  }
}

function optional<T>(context: Context, command: Document, field: string, kind: Kind): T | undefined {
  const value = command[field];
  if (value === undefined || value === null) return undefined;
  if (!matches(value, kind)) {
    throw new CommandFailure(14, `BSON field '${context.name}.${field}' is the wrong type '${bsonKind(value)}', expected type '${kind}'`);
  }
  if (kind === 'number') return Number(value instanceof Long ? value.toNumber() : value) as T;
  if (kind === 'bool') return Boolean(value) as T;
  return value as T;
}

function required<T>(context: Context, command: Document, field: string, kind: Kind): T {
  const value = optional<T>(context, command, field, kind);
  if (value === undefined) throw new CommandFailure(40414, `BSON field '${context.name}.${field}' is missing but a required field`);
  return value;
}

/** The collection a command names in its first field. */
function collectionName(command: Document, context: Context): string {
  const name = command[context.name];
  if (typeof name !== 'string') throw new CommandFailure(73, `collection name has invalid type ${bsonKind(name)}`);
  validateNamespace(context.db, name);
  return name;
}

function checkStatementFields(statement: Document, allowed: readonly string[], path: string): void {
  for (const field of Object.keys(statement)) if (!allowed.includes(field)) throw unknownField(`${path}.${field}`);
}

function documents(value: unknown[], path: string): Document[] {
  return value.map((item) => {
    if (!isPlainDocument(item)) throw new CommandFailure(14, `BSON field '${path}' is the wrong type '${bsonKind(item)}', expected type 'object'`);
    return item;
  });
}

function writeResult(fields: Document, writeErrors: CommandFailure[], indexes: number[]): Document {
  return {
    ...fields,
    ...(writeErrors.length > 0 ? { writeErrors: writeErrors.map((failure, i) => failure.toWriteError(indexes[i] ?? 0)) } : {}),
    ok: 1,
  };
}

function sameDocument(a: Document, b: Document): boolean {
  return Buffer.from(BSON.serialize(a)).equals(Buffer.from(BSON.serialize(b)));
}

/** A hint must name an existing index (mongod answers BadValue otherwise); it changes nothing else here. */
function checkHint(collection: Collection | undefined, hint: unknown): void {
  if (!collection || hint === undefined || hint === null) return;
  if (isPlainDocument(hint) && (Object.keys(hint).length === 0 || Object.hasOwn(hint, '$natural'))) return;
  const found = collection.indexes.some((index) => (typeof hint === 'string' ? index.spec.name === hint : canonicalKey(index.spec.key) === canonicalKey(hint)));
  if (!found)
    throw new CommandFailure(2, 'error processing query: planner returned error :: caused by :: hint provided does not correspond to an existing index');
}

/** mongod's bounds on the statements of one insert/update/delete. */
function checkBatchSize(count: number): void {
  if (count < 1 || count > 100_000) throw new CommandFailure(16, `Write batch sizes must be between 1 and 100000. Got ${count} operations.`);
}

function isReplacement(update: Document | Document[]): boolean {
  return !Array.isArray(update) && !Object.keys(update)[0]?.startsWith('$');
}

// ---------------------------------------------------------------- handlers

const hello: Handler = {
  // The handshake carries client metadata, compression and auth negotiation: accept all,
  // advertise none (so the driver neither compresses nor authenticates).
  fields: '*',
  run(_command, context) {
    return {
      ...(context.name === 'hello' ? { isWritablePrimary: true } : { ismaster: true }),
      helloOk: true,
      maxBsonObjectSize: MAX_BSON_SIZE,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: context.connectionId,
      minWireVersion: 0,
      maxWireVersion: MAX_WIRE_VERSION,
      readOnly: false,
      ok: 1,
    };
  },
};

const buildInfo: Handler = {
  fields: [],
  run() {
    return {
      version: EMULATED_VERSION,
      gitVersion: 'test-emulator',
      versionArray: [7, 0, 0, 0],
      bits: 64,
      debug: false,
      maxBsonObjectSize: MAX_BSON_SIZE,
      storageEngines: ['in-memory-emulator'],
      javascriptEngine: 'none',
      modules: [],
      ok: 1,
    };
  },
};

const PARAMETERS: Readonly<Record<string, unknown>> = {
  featureCompatibilityVersion: { version: '7.0' },
  authenticationMechanisms: [],
  requireApiVersion: false,
  transactionLifetimeLimitSeconds: 60,
};

const getParameter: Handler = {
  fields: '*',
  run(command) {
    const all = command.getParameter === '*';
    const reply: Document = {};
    for (const [name, value] of Object.entries(PARAMETERS)) {
      if (all || Object.hasOwn(command, name)) reply[name] = value;
    }
    if (Object.keys(reply).length === 0) throw new CommandFailure(72, 'no option found to get');
    return { ...reply, ok: 1 };
  },
};

/** Commands with nothing to do here: sessions are not tracked (no transactions, no expiry). */
const ok: Handler = { fields: [], run: () => ({ ok: 1 }) };

const noTransactions: Handler = {
  fields: '*',
  run() {
    throw new CommandFailure(20, 'Transaction numbers are only allowed on a replica set member or mongos');
  },
};

const insert: Handler = {
  fields: ['documents', 'ordered', 'bypassDocumentValidation'],
  run(command, context) {
    const name = collectionName(command, context);
    const docs = required<unknown[]>(context, command, 'documents', 'array');
    checkBatchSize(docs.length);
    const ordered = optional<boolean>(context, command, 'ordered', 'bool') ?? true;
    const errors: CommandFailure[] = [];
    const indexes: number[] = [];
    let n = 0;
    const { collection } = context.storage.ensureCollection(context.db, name);
    for (const [i, raw] of docs.entries()) {
      try {
        if (!isPlainDocument(raw))
          throw new CommandFailure(14, `BSON field 'insert.documents.${i}' is the wrong type '${bsonKind(raw)}', expected type 'object'`);
        collection.insert(cloneDocument(withId(raw)));
        n += 1;
      } catch (err) {
        errors.push(asFailure(err));
        indexes.push(i);
        if (ordered) break;
      }
    }
    return writeResult({ n }, errors, indexes);
  },
};

const UPDATE_STATEMENT_FIELDS = ['q', 'u', 'upsert', 'multi', 'arrayFilters', 'hint', 'upsertSupplied'];

const update: Handler = {
  fields: ['updates', 'ordered', 'bypassDocumentValidation'],
  run(command, context) {
    const name = collectionName(command, context);
    const statements = documents(required<unknown[]>(context, command, 'updates', 'array'), 'update.updates');
    checkBatchSize(statements.length);
    const ordered = optional<boolean>(context, command, 'ordered', 'bool') ?? true;
    const errors: CommandFailure[] = [];
    const indexes: number[] = [];
    const upserted: Document[] = [];
    let n = 0;
    let nModified = 0;
    for (const [i, statement] of statements.entries()) {
      try {
        checkStatementFields(statement, UPDATE_STATEMENT_FIELDS, 'update.updates');
        const sub = { ...context, name: 'update.updates' };
        const filter = required<Document>(sub, statement, 'q', 'object');
        const change = statement.u as unknown;
        if (!isPlainDocument(change) && !Array.isArray(change)) {
          throw new CommandFailure(14, `BSON field 'update.updates.u' is the wrong type '${bsonKind(change)}', expected type 'object'`);
        }
        const multi = optional<boolean>(sub, statement, 'multi', 'bool') ?? false;
        const upsert = optional<boolean>(sub, statement, 'upsert', 'bool') ?? false;
        const arrayFilters = optional<Document[]>(sub, statement, 'arrayFilters', 'array');
        if (multi && isReplacement(change)) throw new CommandFailure(9, 'multi update is not supported for replacement-style update');
        const collection = context.storage.collection(context.db, name);
        checkHint(collection, statement.hint);
        const targets = selectDocuments(collection, { filter, limit: multi ? 0 : 1 });
        if (targets.length === 0 && upsert) {
          const doc = withId(applyUpdate(upsertSeed(filter, isReplacement(change)), change, { filter, arrayFilters, inserting: true }));
          context.storage.ensureCollection(context.db, name).collection.insert(cloneDocument(doc));
          n += 1;
          upserted.push({ index: i, _id: doc._id });
          continue;
        }
        for (const target of targets) {
          const next = applyUpdate(target, change, { filter, arrayFilters, inserting: false });
          n += 1;
          if (!sameDocument(target, next)) {
            (collection as Collection).replace(target, next);
            nModified += 1;
          }
        }
      } catch (err) {
        errors.push(asFailure(err));
        indexes.push(i);
        if (ordered) break;
      }
    }
    return writeResult({ n, nModified, ...(upserted.length > 0 ? { upserted } : {}) }, errors, indexes);
  },
};

const remove: Handler = {
  fields: ['deletes', 'ordered'],
  run(command, context) {
    const name = collectionName(command, context);
    const statements = documents(required<unknown[]>(context, command, 'deletes', 'array'), 'delete.deletes');
    checkBatchSize(statements.length);
    const ordered = optional<boolean>(context, command, 'ordered', 'bool') ?? true;
    const errors: CommandFailure[] = [];
    const indexes: number[] = [];
    let n = 0;
    for (const [i, statement] of statements.entries()) {
      try {
        checkStatementFields(statement, ['q', 'limit', 'hint'], 'delete.deletes');
        const sub = { ...context, name: 'delete.deletes' };
        const filter = required<Document>(sub, statement, 'q', 'object');
        const limit = required<number>(sub, statement, 'limit', 'number');
        if (limit !== 0 && limit !== 1) throw new CommandFailure(9, `The limit field in delete objects must be 0 or 1. Got ${limit}`);
        const collection = context.storage.collection(context.db, name);
        checkHint(collection, statement.hint);
        for (const doc of selectDocuments(collection, { filter, limit })) {
          collection?.remove(doc);
          n += 1;
        }
      } catch (err) {
        errors.push(asFailure(err));
        indexes.push(i);
        if (ordered) break;
      }
    }
    return writeResult({ n }, errors, indexes);
  },
};

const find: Handler = {
  fields: ['filter', 'sort', 'projection', 'skip', 'limit', 'batchSize', 'singleBatch', 'hint', 'allowDiskUse', 'noCursorTimeout', 'allowPartialResults'],
  run(command, context) {
    const name = collectionName(command, context);
    const skip = optional<number>(context, command, 'skip', 'number') ?? 0;
    const limit = optional<number>(context, command, 'limit', 'number') ?? 0;
    const batchSize = optional<number>(context, command, 'batchSize', 'number');
    if (skip < 0) throw new CommandFailure(51024, `BSON field 'skip' value must be >= 0, actual value '${skip}'`);
    if (limit < 0) throw new CommandFailure(51024, `BSON field 'limit' value must be >= 0, actual value '${limit}'`);
    if (batchSize !== undefined && batchSize < 0) throw new CommandFailure(51024, `BSON field 'batchSize' value must be >= 0, actual value '${batchSize}'`);
    const collection = context.storage.collection(context.db, name);
    checkHint(collection, command.hint);
    const selected = selectDocuments(collection, {
      filter: optional<Document>(context, command, 'filter', 'object'),
      sort: optional<Document>(context, command, 'sort', 'object'),
      skip,
      limit,
    });
    const results = projectDocuments(selected.map(cloneDocument), optional<Document>(context, command, 'projection', 'object'));
    const singleBatch = optional<boolean>(context, command, 'singleBatch', 'bool') ?? false;
    return context.cursors.first(`${context.db}.${name}`, results, batchSize, singleBatch);
  },
};

const getMore: Handler = {
  fields: ['collection', 'batchSize'],
  run(command, context) {
    const raw = command.getMore as unknown;
    if (typeof raw !== 'number' && !(raw instanceof Long)) {
      throw new CommandFailure(14, `BSON field 'getMore.getMore' is the wrong type '${bsonKind(raw)}', expected type 'long'`);
    }
    const id = raw instanceof Long ? raw.toNumber() : raw;
    const collection = required<string>(context, command, 'collection', 'string');
    return context.cursors.more(id, `${context.db}.${collection}`, optional<number>(context, command, 'batchSize', 'number'));
  },
};

const killCursors: Handler = {
  fields: ['cursors'],
  run(command, context) {
    collectionName(command, context);
    const ids = required<unknown[]>(context, command, 'cursors', 'array').map((id) => (id instanceof Long ? id.toNumber() : Number(id)));
    return context.cursors.kill(ids);
  },
};

const count: Handler = {
  fields: ['query', 'limit', 'skip', 'hint'],
  run(command, context) {
    const name = collectionName(command, context);
    const collection = context.storage.collection(context.db, name);
    checkHint(collection, command.hint);
    const selected = selectDocuments(collection, {
      filter: optional<Document>(context, command, 'query', 'object'),
      skip: Math.max(0, optional<number>(context, command, 'skip', 'number') ?? 0),
      limit: Math.abs(optional<number>(context, command, 'limit', 'number') ?? 0),
    });
    return { n: selected.length, ok: 1 };
  },
};

const distinct: Handler = {
  fields: ['key', 'query', 'hint'],
  run(command, context) {
    const name = collectionName(command, context);
    const key = required<string>(context, command, 'key', 'string');
    const collection = context.storage.collection(context.db, name);
    checkHint(collection, command.hint);
    const selected = selectDocuments(collection, { filter: optional<Document>(context, command, 'query', 'object') });
    const values = new Map<string, unknown>();
    for (const doc of selected) {
      for (const value of distinctValues(doc, key)) {
        const id = canonicalKey(value);
        if (!values.has(id)) values.set(id, value);
      }
    }
    return { values: cloneDocument({ v: [...values.values()] }).v as unknown[], ok: 1 };
  },
};

const aggregateCommand: Handler = {
  fields: ['pipeline', 'cursor', 'allowDiskUse', 'hint'],
  run(command, context) {
    if (typeof command.aggregate !== 'string') {
      throw new CommandFailure(115, 'database-level aggregation (aggregate: 1) is not supported by the test emulator');
    }
    const name = collectionName(command, context);
    const pipeline = documents(required<unknown[]>(context, command, 'pipeline', 'array'), 'aggregate.pipeline');
    const cursor = optional<Document>(context, command, 'cursor', 'object');
    if (!cursor) throw new CommandFailure(9, "The 'cursor' option is required, except for aggregate with the explain argument");
    const batchSize = optional<number>({ ...context, name: 'aggregate.cursor' }, cursor, 'batchSize', 'number');
    const collection = context.storage.collection(context.db, name);
    checkHint(collection, command.hint);
    const source = collection?.docs ?? [];
    const results = aggregate(source, pipeline, (other) => (context.storage.collection(context.db, other)?.docs ?? []).map(cloneDocument));
    return context.cursors.first(`${context.db}.${name}`, results, batchSize);
  },
};

const findAndModify: Handler = {
  fields: ['query', 'sort', 'remove', 'update', 'new', 'fields', 'upsert', 'arrayFilters', 'bypassDocumentValidation', 'hint'],
  run(command, context) {
    const name = collectionName(command, context);
    const filter = optional<Document>(context, command, 'query', 'object') ?? {};
    const sort = optional<Document>(context, command, 'sort', 'object');
    const removing = optional<boolean>(context, command, 'remove', 'bool') ?? false;
    const change = command.update as unknown;
    const returnNew = optional<boolean>(context, command, 'new', 'bool') ?? false;
    const fields = optional<Document>(context, command, 'fields', 'object');
    const upsert = optional<boolean>(context, command, 'upsert', 'bool') ?? false;
    const arrayFilters = optional<Document[]>(context, command, 'arrayFilters', 'array');
    if (removing && change !== undefined) throw new CommandFailure(9, 'Cannot specify both an update and remove=true');
    if (removing && upsert) throw new CommandFailure(9, 'Cannot specify both upsert=true and remove=true ');
    if (removing && returnNew) throw new CommandFailure(9, "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document");
    if (!removing && change === undefined) throw new CommandFailure(9, 'Either an update or remove=true must be specified');
    if (!removing && !isPlainDocument(change) && !Array.isArray(change)) {
      throw new CommandFailure(14, `BSON field 'findAndModify.update' is the wrong type '${bsonKind(change)}', expected type 'object'`);
    }
    const collection = context.storage.collection(context.db, name);
    checkHint(collection, command.hint);
    const [target] = selectDocuments(collection, { filter, sort, limit: 1 });
    const shape = (doc: Document | undefined): Document | null => (doc ? (projectDocuments([cloneDocument(doc)], fields)[0] ?? null) : null);

    if (removing) {
      if (target) collection?.remove(target);
      return { lastErrorObject: { n: target ? 1 : 0 }, value: shape(target), ok: 1 };
    }
    const updateDoc = change as Document | Document[];
    if (target) {
      const next = applyUpdate(target, updateDoc, { filter, arrayFilters, inserting: false });
      if (!sameDocument(target, next)) (collection as Collection).replace(target, next);
      return { lastErrorObject: { n: 1, updatedExisting: true }, value: shape(returnNew ? next : target), ok: 1 };
    }
    if (upsert) {
      const doc = cloneDocument(withId(applyUpdate(upsertSeed(filter, isReplacement(updateDoc)), updateDoc, { filter, arrayFilters, inserting: true })));
      context.storage.ensureCollection(context.db, name).collection.insert(doc);
      return { lastErrorObject: { n: 1, updatedExisting: false, upserted: doc._id }, value: returnNew ? shape(doc) : null, ok: 1 };
    }
    return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
  },
};

const INDEX_OPTIONS = new Set(['key', 'name', 'unique', 'sparse', 'partialFilterExpression', 'expireAfterSeconds', 'background', 'v']);

function indexSpec(raw: Document): IndexSpec {
  for (const field of Object.keys(raw)) {
    if (!INDEX_OPTIONS.has(field)) {
      throw new CommandFailure(
        197,
        `The field '${field}' is not valid for an index specification (or not supported by the test emulator). Specification: ${formatValue(raw)}`,
      );
    }
  }
  const key = raw.key as unknown;
  if (!isPlainDocument(key) || Object.keys(key).length === 0) throw new CommandFailure(67, 'Index keys cannot be an empty field.');
  for (const [field, direction] of Object.entries(key)) {
    if (direction !== 1 && direction !== -1) {
      throw new CommandFailure(67, `Values in the index key pattern must be 1 or -1 in the test emulator; got ${field}: ${formatValue(direction)}`);
    }
  }
  const name =
    raw.name ??
    Object.entries(key)
      .map(([field, direction]) => `${field}_${String(direction)}`)
      .join('_');
  if (typeof name !== 'string' || name.length === 0) throw new CommandFailure(67, 'index name must be a non-empty string');
  if (raw.partialFilterExpression !== undefined) {
    if (!isPlainDocument(raw.partialFilterExpression)) throw new CommandFailure(14, "'partialFilterExpression' for an index must be a document");
    compileQuery(raw.partialFilterExpression);
  }
  if (raw.expireAfterSeconds !== undefined && (typeof raw.expireAfterSeconds !== 'number' || raw.expireAfterSeconds < 0)) {
    throw new CommandFailure(2, "TTL index 'expireAfterSeconds' option must be a non-negative number");
  }
  const spec: IndexSpec = { v: 2, key, name };
  if (raw.unique) spec.unique = true;
  if (raw.sparse) spec.sparse = true;
  if (raw.partialFilterExpression !== undefined) spec.partialFilterExpression = raw.partialFilterExpression as Document;
  if (raw.expireAfterSeconds !== undefined) spec.expireAfterSeconds = raw.expireAfterSeconds as number;
  if (raw.background !== undefined) spec.background = raw.background;
  return spec;
}

const createIndexes: Handler = {
  fields: ['indexes', 'commitQuorum'],
  run(command, context) {
    const name = collectionName(command, context);
    const specs = documents(required<unknown[]>(context, command, 'indexes', 'array'), 'createIndexes.indexes').map(indexSpec);
    if (specs.length === 0) throw new CommandFailure(2, 'Must specify at least one index to create');
    const { collection, created } = context.storage.ensureCollection(context.db, name);
    const before = collection.indexes.length;
    const added = [];
    try {
      for (const spec of specs) {
        const sameName = collection.findIndex(spec.name);
        const sameKey = collection.indexes.find((index) => canonicalKey(index.spec.key) === canonicalKey(spec.key));
        if (sameName) {
          if (canonicalKey(sameName.spec.key) !== canonicalKey(spec.key)) {
            throw new CommandFailure(
              86,
              `An existing index has the same name as the requested index. Requested index: ${formatValue(spec)}, existing index: ${formatValue(sameName.spec)}`,
            );
          }
          if (!sameName.isIdIndex && !sameName.sameBehaviour(spec)) {
            throw new CommandFailure(
              85,
              `An existing index has the same name as the requested index but different options. Requested index: ${formatValue(spec)}, existing index: ${formatValue(sameName.spec)}`,
            );
          }
          continue;
        }
        if (sameKey) {
          throw new CommandFailure(85, `Index already exists with a different name: ${sameKey.spec.name}`);
        }
        collection.addIndex(spec);
        added.push(spec.name);
      }
    } catch (err) {
      // mongod builds the indexes of one command all or nothing.
      for (const indexName of added) {
        const index = collection.findIndex(indexName);
        if (index) collection.dropIndex(index);
      }
      throw err;
    }
    const after = collection.indexes.length;
    return {
      numIndexesBefore: before,
      numIndexesAfter: after,
      createdCollectionAutomatically: created,
      ...(before === after ? { note: 'all indexes already exist' } : {}),
      ok: 1,
    };
  },
};

const listIndexes: Handler = {
  fields: ['cursor'],
  run(command, context) {
    const name = collectionName(command, context);
    const collection = context.storage.collection(context.db, name);
    if (!collection) throw new CommandFailure(26, `ns does not exist: ${context.db}.${name}`);
    const cursor = optional<Document>(context, command, 'cursor', 'object') ?? {};
    const specs = collection.indexes.map((index) => cloneDocument(index.spec));
    return context.cursors.first(
      `${context.db}.$cmd.listIndexes.${name}`,
      specs,
      optional<number>({ ...context, name: 'listIndexes.cursor' }, cursor, 'batchSize', 'number'),
    );
  },
};

const dropIndexes: Handler = {
  fields: ['index'],
  run(command, context) {
    const name = collectionName(command, context);
    const collection = context.storage.collection(context.db, name);
    if (!collection) throw new CommandFailure(26, `ns not found ${context.db}.${name}`);
    const nIndexesWas = collection.indexes.length;
    const target = command.index as unknown;
    const pick = (wanted: unknown) => {
      const index =
        typeof wanted === 'string'
          ? collection.findIndex(wanted)
          : collection.indexes.find((candidate) => canonicalKey(candidate.spec.key) === canonicalKey(wanted));
      if (!index) throw new CommandFailure(27, `index not found with name [${typeof wanted === 'string' ? wanted : formatValue(wanted)}]`);
      if (index.isIdIndex) throw new CommandFailure(72, 'cannot drop _id index');
      return index;
    };
    if (target === '*') {
      for (const index of [...collection.indexes]) if (!index.isIdIndex) collection.dropIndex(index);
    } else if (Array.isArray(target)) {
      for (const index of target.map(pick)) collection.dropIndex(index);
    } else if (typeof target === 'string' || isPlainDocument(target)) {
      collection.dropIndex(pick(target));
    } else {
      throw new CommandFailure(14, `BSON field 'dropIndexes.index' is the wrong type '${bsonKind(target)}', expected types '[string, object, array]'`);
    }
    return { nIndexesWas, ok: 1 };
  },
};

const create: Handler = {
  fields: [],
  run(command, context) {
    const name = collectionName(command, context);
    const { created } = context.storage.ensureCollection(context.db, name);
    if (!created) throw new CommandFailure(48, `Collection ${context.db}.${name} already exists.`);
    return { ok: 1 };
  },
};

const drop: Handler = {
  fields: [],
  run(command, context) {
    const name = collectionName(command, context);
    const dropped = context.storage.dropCollection(context.db, name);
    // Since MongoDB 7.0, dropping a missing collection succeeds.
    return dropped ? { nIndexesWas: dropped.indexes.length, ns: dropped.ns, ok: 1 } : { ok: 1 };
  },
};

const dropDatabase: Handler = {
  fields: [],
  run(_command, context) {
    context.storage.dropDatabase(context.db);
    return { dropped: context.db, ok: 1 };
  },
};

const listCollections: Handler = {
  fields: ['filter', 'nameOnly', 'authorizedCollections', 'cursor'],
  run(command, context) {
    const filter = optional<Document>(context, command, 'filter', 'object') ?? {};
    const nameOnly = optional<boolean>(context, command, 'nameOnly', 'bool') ?? false;
    const cursor = optional<Document>(context, command, 'cursor', 'object') ?? {};
    const query = compileQuery(filter);
    const infos = context.storage
      .collections(context.db)
      .map((collection) => ({
        name: collection.name,
        type: 'collection',
        options: {},
        info: { readOnly: false, uuid: collection.uuid },
        idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
      }))
      .filter((info) => query.test(info))
      .map((info) => (nameOnly ? { name: info.name, type: info.type } : info));
    return context.cursors.first(
      `${context.db}.$cmd.listCollections`,
      infos,
      optional<number>({ ...context, name: 'listCollections.cursor' }, cursor, 'batchSize', 'number'),
    );
  },
};

const listDatabases: Handler = {
  fields: ['filter', 'nameOnly', 'authorizedDatabases'],
  run(command, context) {
    if (context.db !== 'admin') throw new CommandFailure(13, 'listDatabases may only be run against the admin database.');
    const query = compileQuery(optional<Document>(context, command, 'filter', 'object') ?? {});
    const nameOnly = optional<boolean>(context, command, 'nameOnly', 'bool') ?? false;
    const databases = context.storage
      .databaseNames()
      .map((name) => {
        const sizeOnDisk = context.storage
          .collections(name)
          .reduce((sum, collection) => sum + collection.docs.reduce((bytes, doc) => bytes + BSON.calculateObjectSize(doc), 0), 0);
        return { name, sizeOnDisk, empty: sizeOnDisk === 0 };
      })
      .filter((info) => query.test(info));
    if (nameOnly) return { databases: databases.map(({ name }) => ({ name })), ok: 1 };
    const totalSize = databases.reduce((sum, info) => sum + info.sizeOnDisk, 0);
    return { databases, totalSize, totalSizeMb: Math.floor(totalSize / (1024 * 1024)), ok: 1 };
  },
};

const HANDLERS: Readonly<Record<string, Handler>> = {
  hello,
  isMaster: hello,
  ismaster: hello,
  ping: ok,
  buildInfo,
  buildinfo: buildInfo,
  getParameter,
  endSessions: ok,
  killAllSessions: ok,
  refreshSessions: ok,
  commitTransaction: noTransactions,
  abortTransaction: noTransactions,
  insert,
  update,
  delete: remove,
  find,
  getMore,
  killCursors,
  count,
  distinct,
  aggregate: aggregateCommand,
  findAndModify,
  findandmodify: findAndModify,
  createIndexes,
  listIndexes,
  dropIndexes,
  deleteIndexes: dropIndexes,
  create,
  drop,
  dropDatabase,
  listCollections,
  listDatabases,
};
