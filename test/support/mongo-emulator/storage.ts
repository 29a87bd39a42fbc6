/**
 * In-memory databases, collections and indexes. Documents are kept in natural (insertion)
 * order and never mutated in place: a write builds a new document and swaps it in, so a
 * failed unique check leaves the collection untouched. Only unique indexes keep entries;
 * every query scans, which is plenty for test-sized collections.
 */
import { Binary, BSON, Decimal128, EJSON, Long, ObjectId, UUID, type Document } from 'bson';
import { Query } from 'mingo';
import { CommandFailure, asFailure } from './errors.js';

/** mongod's maxBsonObjectSize. */
export const MAX_BSON_SIZE = 16 * 1024 * 1024;

/** A path that does not exist in the document (distinct from an explicit null). */
const MISSING = Symbol('missing');
/** An empty array at the end of an indexed path, which mongod indexes as `undefined`. */
const EMPTY_ARRAY = Symbol('empty array');

export interface IndexSpec extends Document {
  v: 2;
  key: Document;
  name: string;
  unique?: boolean;
  sparse?: boolean;
  partialFilterExpression?: Document;
  expireAfterSeconds?: number;
}

/** Index options that change which documents an index holds or rejects; compared on re-creation. */
const BEHAVIOUR_OPTIONS = ['unique', 'sparse', 'partialFilterExpression', 'expireAfterSeconds'] as const;

interface IndexEntry {
  readonly key: string;
  readonly value: Document;
}

export class Index {
  readonly fields: readonly string[];
  readonly unique: boolean;
  /** Unique indexes only: the document owning each key. */
  readonly owners = new Map<string, Document>();
  private readonly partial: Query | undefined;

  constructor(
    readonly spec: IndexSpec,
    readonly isIdIndex = false,
  ) {
    this.fields = Object.keys(spec.key);
    this.unique = isIdIndex || spec.unique === true;
    this.partial = spec.partialFilterExpression ? compileQuery(spec.partialFilterExpression) : undefined;
  }

  /** The keys `doc` contributes to this index; empty when a sparse or partial index skips it. */
  entries(doc: Document): IndexEntry[] {
    if (this.partial && !this.partial.test(doc)) return [];
    const perField = this.fields.map((field) => valuesAtPath(doc, field.split('.')));
    if (this.spec.sparse && perField.every((values) => values.every((value) => value === MISSING))) return [];
    const multi = perField.filter((values) => values.length > 1);
    if (multi.length > 1) {
      throw new CommandFailure(171, `cannot index parallel arrays [${this.fields.join('] [')}]`);
    }
    let combos: unknown[][] = [[]];
    for (const values of perField) combos = combos.flatMap((prefix) => values.map((value) => [...prefix, value]));
    return combos.map((combo) => {
      const value: Document = {};
      this.fields.forEach((field, i) => {
        value[field] = combo[i] === MISSING ? null : combo[i] === EMPTY_ARRAY ? undefined : combo[i];
      });
      return { key: combo.map((part) => canonicalKey(part === MISSING ? null : part)).join('\u0000'), value };
    });
  }

  sameBehaviour(other: IndexSpec): boolean {
    return BEHAVIOUR_OPTIONS.every((option) => canonicalKey(this.spec[option]) === canonicalKey(other[option]));
  }
}

export class Collection {
  readonly docs: Document[] = [];
  readonly indexes: Index[] = [new Index({ v: 2, key: { _id: 1 }, name: '_id_' }, true)];
  readonly uuid = new UUID();

  constructor(
    readonly db: string,
    readonly name: string,
  ) {}

  get ns(): string {
    return `${this.db}.${this.name}`;
  }

  /** Adds a document that already has an `_id`; throws the duplicate-key error mongod would. */
  insert(doc: Document): void {
    const plan = this.checkUnique(doc, undefined);
    this.docs.push(doc);
    this.claim(plan, doc);
  }

  /** Swaps `current` for `next` in place (same natural position), unique indexes permitting. */
  replace(current: Document, next: Document): void {
    const plan = this.checkUnique(next, current);
    const position = this.docs.indexOf(current);
    if (position < 0) throw new CommandFailure(1, 'emulator: replaced document is not in the collection');
    this.release(current);
    this.docs[position] = next;
    this.claim(plan, next);
  }

  remove(doc: Document): void {
    const position = this.docs.indexOf(doc);
    if (position < 0) return;
    this.docs.splice(position, 1);
    this.release(doc);
  }

  findIndex(name: string): Index | undefined {
    return this.indexes.find((index) => index.spec.name === name);
  }

  /** Builds an index over the existing documents; a unique violation aborts it untouched. */
  addIndex(spec: IndexSpec): void {
    const index = new Index(spec);
    if (index.unique) {
      for (const doc of this.docs) {
        for (const entry of index.entries(doc)) {
          const owner = index.owners.get(entry.key);
          if (owner && owner !== doc) throw duplicateKey(this.ns, index, entry.value);
          index.owners.set(entry.key, doc);
        }
      }
    } else {
      // Still evaluated: parallel arrays make a real index build fail too.
      for (const doc of this.docs) index.entries(doc);
    }
    this.indexes.push(index);
  }

  dropIndex(index: Index): void {
    this.indexes.splice(this.indexes.indexOf(index), 1);
  }

  private checkUnique(doc: Document, replacing: Document | undefined): [Index, IndexEntry[]][] {
    const plan: [Index, IndexEntry[]][] = [];
    for (const index of this.indexes) {
      const entries = index.entries(doc);
      if (!index.unique) continue;
      for (const entry of entries) {
        const owner = index.owners.get(entry.key);
        if (owner && owner !== replacing) throw duplicateKey(this.ns, index, entry.value);
      }
      plan.push([index, entries]);
    }
    return plan;
  }

  private claim(plan: [Index, IndexEntry[]][], doc: Document): void {
    for (const [index, entries] of plan) for (const entry of entries) index.owners.set(entry.key, doc);
  }

  private release(doc: Document): void {
    for (const index of this.indexes) {
      if (!index.unique) continue;
      for (const entry of index.entries(doc)) {
        if (index.owners.get(entry.key) === doc) index.owners.delete(entry.key);
      }
    }
  }
}

/** All databases of one emulator instance. */
export class Storage {
  private readonly databases = new Map<string, Map<string, Collection>>();

  collection(db: string, name: string): Collection | undefined {
    return this.databases.get(db)?.get(name);
  }

  /** The collection, created (implicitly, as mongod does on first write) when missing. */
  ensureCollection(db: string, name: string): { collection: Collection; created: boolean } {
    const existing = this.collection(db, name);
    if (existing) return { collection: existing, created: false };
    validateNamespace(db, name);
    let collections = this.databases.get(db);
    if (!collections) {
      collections = new Map();
      this.databases.set(db, collections);
    }
    const collection = new Collection(db, name);
    collections.set(name, collection);
    return { collection, created: true };
  }

  dropCollection(db: string, name: string): Collection | undefined {
    const collections = this.databases.get(db);
    const collection = collections?.get(name);
    if (!collections || !collection) return undefined;
    collections.delete(name);
    if (collections.size === 0) this.databases.delete(db);
    return collection;
  }

  dropDatabase(db: string): void {
    this.databases.delete(db);
  }

  collections(db: string): Collection[] {
    return [...(this.databases.get(db)?.values() ?? [])];
  }

  databaseNames(): string[] {
    return [...this.databases.keys()];
  }

  clear(): void {
    this.databases.clear();
  }
}

/** mongod's naming rules (docs: "Naming Restrictions"). */
export function validateNamespace(db: string, collection?: string): void {
  if (db.length === 0 || db.length > 63 || /[/\\. "$*<>:|?\0]/.test(db)) {
    throw new CommandFailure(73, `Invalid database name: '${db}'`);
  }
  if (
    collection !== undefined &&
    (collection.length === 0 || collection.includes('\0') || collection.includes('$') || collection.startsWith('system.') || collection.startsWith('.'))
  ) {
    throw new CommandFailure(73, `Invalid collection name: ${collection}`);
  }
}

export function duplicateKey(ns: string, index: Index, keyValue: Document): CommandFailure {
  return new CommandFailure(11000, `E11000 duplicate key error collection: ${ns} index: ${index.spec.name} dup key: ${formatValue(keyValue)}`, {
    keyPattern: index.spec.key,
    keyValue,
  });
}

/**
 * The values a path reaches, expanding arrays the way a multikey index does: an array on
 * the way is traversed element by element, an array at the end contributes each element.
 */
function valuesAtPath(value: unknown, parts: readonly string[]): unknown[] {
  if (parts.length === 0) {
    if (Array.isArray(value)) return value.length === 0 ? [EMPTY_ARRAY] : dedupe(value);
    return [value === undefined ? MISSING : value];
  }
  const [head, ...rest] = parts as [string, ...string[]];
  if (Array.isArray(value)) {
    if (/^\d+$/.test(head)) return valuesAtPath(value[Number(head)], rest);
    const found = value.filter(isPlainDocument).flatMap((element) => valuesAtPath(element, parts));
    return found.length === 0 ? [MISSING] : dedupe(found);
  }
  if (isPlainDocument(value) && Object.hasOwn(value, head)) return valuesAtPath(value[head], rest);
  return [MISSING];
}

function dedupe(values: unknown[]): unknown[] {
  const seen = new Map<string, unknown>();
  for (const value of values) {
    const key = typeof value === 'symbol' ? value.toString() : canonicalKey(value);
    if (!seen.has(key)) seen.set(key, value);
  }
  return [...seen.values()];
}

export function isPlainDocument(value: unknown): value is Document {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !('_bsontype' in value) &&
    !(value instanceof Date) &&
    !(value instanceof RegExp) &&
    !(value instanceof Uint8Array)
  );
}

/**
 * A string equal for exactly the values mongod's index treats as equal (without collation):
 * numbers by value whatever their BSON type, documents by ordered fields.
 */
export function canonicalKey(value: unknown): string {
  if (value === undefined) return 'u';
  if (value === EMPTY_ARRAY) return 'u';
  if (value === null || value === MISSING) return 'z';
  if (typeof value === 'number') return `n:${Object.is(value, -0) ? 0 : value}`;
  if (typeof value === 'bigint') return `n:${value}`;
  if (typeof value === 'string') return `s:${JSON.stringify(value)}`;
  if (typeof value === 'boolean') return `b:${value}`;
  if (value instanceof Date) return `d:${value.getTime()}`;
  if (value instanceof RegExp) return `r:${value.source}/${value.flags}`;
  if (value instanceof ObjectId) return `o:${value.toHexString()}`;
  if (value instanceof Long) return `n:${value.toString()}`;
  if (value instanceof Decimal128) return `n:${Number(value.toString())}`;
  if (value instanceof Binary) return `x:${value.sub_type}:${Buffer.from(value.buffer).toString('base64')}`;
  if (Array.isArray(value)) return `[${value.map(canonicalKey).join(',')}]`;
  if (isPlainDocument(value)) {
    return `{${Object.entries(value)
      .map(([key, inner]) => `${JSON.stringify(key)}:${canonicalKey(inner)}`)
      .join(',')}}`;
  }
  return `e:${EJSON.stringify({ v: value }, { relaxed: false })}`;
}

/** A value printed the way mongod prints it in error messages (`{ email: "x" }`). */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return `new Date(${value.getTime()})`;
  if (value instanceof ObjectId) return `ObjectId('${value.toHexString()}')`;
  if (value instanceof RegExp) return `/${value.source}/${value.flags}`;
  if (Array.isArray(value)) return `[ ${value.map(formatValue).join(', ')} ]`;
  if (isPlainDocument(value)) {
    const fields = Object.entries(value).map(([key, inner]) => `${key}: ${formatValue(inner)}`);
    return fields.length === 0 ? '{}' : `{ ${fields.join(', ')} }`;
  }
  return EJSON.stringify(value as Document, { relaxed: true });
}

/** A deep, independent copy through BSON, which also enforces the 16 MiB document limit. */
export function cloneDocument(doc: Document): Document {
  let bytes: Uint8Array;
  try {
    bytes = BSON.serialize(doc, { ignoreUndefined: true });
  } catch (err) {
    throw asFailure(err);
  }
  if (bytes.length > MAX_BSON_SIZE) {
    throw new CommandFailure(10334, `BSONObj size: ${bytes.length} (0x${bytes.length.toString(16)}) is invalid. Size must be between 0 and 16793600(16MB)`);
  }
  return BSON.deserialize(bytes, { promoteLongs: true, promoteValues: true, promoteBuffers: false, bsonRegExp: false });
}

export function compileQuery(filter: Document): Query {
  try {
    return new Query(filter, {});
  } catch (err) {
    throw asFailure(err);
  }
}

/** The values `path` reaches in `doc` as `distinct` sees them: array elements one by one, missing paths left out. */
export function distinctValues(doc: Document, path: string): unknown[] {
  return valuesAtPath(doc, path.split('.')).filter((value) => value !== MISSING && value !== EMPTY_ARRAY);
}
