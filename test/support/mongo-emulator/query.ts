/**
 * Query, sort, projection, update and aggregation semantics, delegated to mingo (a MongoDB
 * query engine for in-memory objects) wherever it agrees with mongod, and checked here
 * where mingo would silently do nothing while mongod fails (e.g. `$inc` on a string).
 */
import { ObjectId, type Document } from 'bson';
import { Aggregator, find as mingoFind, update as mingoUpdate, updateOne as mingoUpdateOne } from 'mingo';
import { CommandFailure, asFailure } from './errors.js';
import { canonicalKey, cloneDocument, compileQuery, formatValue, isPlainDocument, type Collection } from './storage.js';

export interface Selection {
  readonly filter?: Document | undefined;
  readonly sort?: Document | undefined;
  readonly skip?: number | undefined;
  /** 0 = no limit. */
  readonly limit?: number | undefined;
}

/** The stored documents (the very objects, not copies) matching `selection`, in order. */
export function selectDocuments(collection: Collection | undefined, selection: Selection): Document[] {
  if (!collection) return [];
  let docs = byIdLookup(collection, selection.filter);
  if (!docs) {
    const query = compileQuery(selection.filter ?? {});
    docs = collection.docs.filter((doc) => query.test(doc));
  }
  docs = sortDocuments(docs, selection.sort);
  const skip = selection.skip ?? 0;
  const limit = selection.limit ?? 0;
  if (skip > 0 || limit > 0) docs = docs.slice(skip, limit > 0 ? skip + limit : undefined);
  return docs;
}

/**
 * mongod's IDHACK: a filter that is exactly `{ _id: <ObjectId | string | number> }` is an
 * equality on the unique _id index, answered from it without a scan (or a compiled query).
 * Numbers match across types by value there as in the scan (canonicalKey). Anything else
 * (operators, regexes, documents, more fields) is left to the scan.
 */
function byIdLookup(collection: Collection, filter: Document | undefined): Document[] | undefined {
  if (!filter) return undefined;
  const keys = Object.keys(filter);
  if (keys.length !== 1 || keys[0] !== '_id') return undefined;
  const value: unknown = filter._id;
  if (!(value instanceof ObjectId) && typeof value !== 'string' && typeof value !== 'number') return undefined;
  const owner = collection.indexes.find((index) => index.isIdIndex)?.owners.get(canonicalKey(value));
  return owner ? [owner] : [];
}

function sortDocuments(docs: Document[], sort: Document | undefined): Document[] {
  if (!sort || Object.keys(sort).length === 0) return docs;
  for (const [field, direction] of Object.entries(sort)) {
    if (field === '$natural') {
      if (Object.keys(sort).length > 1) throw new CommandFailure(2, '$natural sort cannot be combined with other fields');
      return direction === -1 ? [...docs].reverse() : docs;
    }
    if (direction !== 1 && direction !== -1) {
      throw new CommandFailure(15974, `Illegal key in $sort specification: ${field}: ${formatValue(direction)} (the emulator supports 1 and -1)`);
    }
  }
  try {
    // Sorting keeps the object identities: callers may then write to the same documents.
    return mingoFind(docs, {})
      .sort(sort as Record<string, 1 | -1>)
      .all() as Document[];
  } catch (err) {
    throw asFailure(err);
  }
}

/** Applies a find projection to copies; top-level fields keep the document's own order as in mongod. */
export function projectDocuments(docs: readonly Document[], projection: Document | undefined): Document[] {
  if (!projection || Object.keys(projection).length === 0) return [...docs];
  let projected: Document[];
  try {
    projected = mingoFind([...docs], {}, projection).all() as Document[];
  } catch (err) {
    throw asFailure(err);
  }
  return projected.map((result, i) => {
    const order = Object.keys(docs[i] ?? {});
    const ordered: Document = {};
    for (const key of order) if (Object.hasOwn(result, key)) ordered[key] = result[key];
    for (const key of Object.keys(result)) if (!Object.hasOwn(ordered, key)) ordered[key] = result[key];
    return ordered;
  });
}

/** Runs a read-only pipeline over copies of the collection's documents. */
export function aggregate(docs: readonly Document[], pipeline: Document[], resolve: (collection: string) => Document[]): Document[] {
  for (const stage of pipeline) {
    const name = Object.keys(stage)[0];
    if (name === '$out' || name === '$merge') throw new CommandFailure(115, `${name} is not supported by the test emulator`);
  }
  try {
    return new Aggregator(pipeline, { collectionResolver: resolve }).run(docs.map(cloneDocument)) as Document[];
  } catch (err) {
    throw asFailure(err);
  }
}

// ---------------------------------------------------------------- updates

const UPDATE_OPERATORS = new Set([
  '$set',
  '$unset',
  '$inc',
  '$mul',
  '$min',
  '$max',
  '$rename',
  '$push',
  '$addToSet',
  '$pull',
  '$pullAll',
  '$pop',
  '$bit',
  '$currentDate',
  '$setOnInsert',
]);
/** Operators that create the path when it is missing (so a scalar in the way is an error). */
const CREATING = new Set(['$set', '$setOnInsert', '$inc', '$mul', '$min', '$max', '$push', '$addToSet', '$currentDate', '$bit']);
const NUMERIC = new Set(['$inc', '$mul']);
const ARRAY_TARGET = new Set(['$push', '$addToSet', '$pull', '$pullAll', '$pop']);

export interface UpdateOptions {
  /** The statement's filter: the positional `$` operator refers to it. */
  readonly filter: Document;
  readonly arrayFilters?: Document[] | undefined;
  /** The document is being inserted by an upsert: `$setOnInsert` applies. */
  readonly inserting: boolean;
}

/**
 * The document `update` turns `current` into (a new object; `current` is untouched).
 * `update` is an operator document, a replacement document or a pipeline.
 */
export function applyUpdate(current: Document, update: Document | Document[], options: UpdateOptions): Document {
  let next: Document;
  if (Array.isArray(update)) {
    const holder = [cloneDocument(current)];
    try {
      mingoUpdateOne(holder, {}, update as Parameters<typeof mingoUpdateOne>[2]);
    } catch (err) {
      throw asFailure(err);
    }
    next = holder[0] ?? {};
  } else if (isOperatorUpdate(update)) {
    next = applyOperators(current, update, options);
  } else {
    for (const key of Object.keys(update)) {
      if (key.startsWith('$')) {
        throw new CommandFailure(52, `The dollar ($) prefixed field '${key}' in '${key}' is not allowed in the context of an update's replacement document.`);
      }
    }
    const { _id: replacementId, ...rest } = update;
    next = current._id === undefined ? { ...(replacementId === undefined ? {} : { _id: replacementId }), ...rest } : { _id: current._id, ...rest };
    if (replacementId !== undefined && current._id !== undefined && canonicalKey(replacementId) !== canonicalKey(current._id)) {
      throw immutableId(current);
    }
  }
  next = cloneDocument(next);
  if (current._id !== undefined && canonicalKey(next._id) !== canonicalKey(current._id)) throw immutableId(current);
  return next;
}

function immutableId(current: Document): CommandFailure {
  return new CommandFailure(66, `Performing an update on the path '_id' would modify the immutable field '_id' (document _id: ${formatValue(current._id)})`);
}

function isOperatorUpdate(update: Document): boolean {
  const keys = Object.keys(update);
  if (keys.length === 0 || !keys[0]?.startsWith('$')) return false;
  for (const key of keys) {
    if (!UPDATE_OPERATORS.has(key)) {
      throw new CommandFailure(9, `Unknown modifier: ${key}. Expected a valid update modifier or pipeline-style update specified as an array`);
    }
  }
  return true;
}

function applyOperators(current: Document, update: Document, options: UpdateOptions): Document {
  const modifier: Document = {};
  const paths: string[] = [];
  for (const [operator, operand] of Object.entries(update)) {
    if (!isPlainDocument(operand)) {
      throw new CommandFailure(
        9,
        `Modifiers operate on fields but we found type ${typeName(operand)} instead. For example: {$mod: {<field>: ...}} not {${operator}: ${formatValue(operand)}}`,
      );
    }
    for (const [path, value] of Object.entries(operand)) {
      paths.push(path);
      if (operator === '$rename' && typeof value === 'string') paths.push(value);
      if (NUMERIC.has(operator) && !isNumeric(value)) {
        throw new CommandFailure(14, `Cannot ${operator === '$inc' ? 'increment' : 'multiply'} with non-numeric argument: {${path}: ${formatValue(value)}}`);
      }
    }
    if (operator === '$setOnInsert') {
      if (!options.inserting) continue;
      modifier.$set = { ...(modifier.$set as Document | undefined), ...operand };
    } else if (operator === '$set') {
      modifier.$set = { ...(modifier.$set as Document | undefined), ...operand };
    } else {
      modifier[operator] = operand;
    }
  }
  checkConflicts(paths);

  const next = cloneDocument(current);
  settleId(next, modifier, options.inserting);
  let positional = false;
  for (const [operator, operand] of Object.entries(modifier)) {
    for (const path of Object.keys(operand as Document)) {
      if (path.split('.').includes('$')) positional = true;
      checkTarget(next, operator, path);
    }
  }
  if (positional && options.inserting) throw new CommandFailure(2, 'The positional operator did not find the match needed from the query.');
  try {
    // The filter is passed only for the positional operator: mingo skips the update when
    // the document does not match it, which an upsert's new document need not.
    mingoUpdate(next, modifier, options.arrayFilters, positional ? options.filter : undefined, { cloneMode: 'deep' });
  } catch (err) {
    throw asFailure(err);
  }
  return next;
}

/**
 * `_id` may be set by an upsert's insert, or "set" to its current value; any other change is
 * refused (mingo refuses it too, but with a message mongod would not give: code 66 here).
 */
function settleId(doc: Document, modifier: Document, inserting: boolean): void {
  for (const [operator, operand] of Object.entries(modifier)) {
    for (const [path, value] of Object.entries(operand as Document)) {
      if (path !== '_id' && !path.startsWith('_id.')) continue;
      if (operator === '$set' && path === '_id' && (inserting || canonicalKey(value) === canonicalKey(doc._id))) {
        doc._id = value;
        delete (operand as Document)[path];
        continue;
      }
      throw new CommandFailure(66, `Performing an update on the path '${path}' would modify the immutable field '_id'`);
    }
  }
}

/** mongod refuses two operators touching the same path or a path and its prefix. */
function checkConflicts(paths: readonly string[]): void {
  const sorted = [...paths].sort();
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] as string;
    const b = sorted[i] as string;
    if (a === b || b.startsWith(`${a}.`)) {
      throw new CommandFailure(40, `Updating the path '${b}' would create a conflict at '${a}'`);
    }
  }
}

/** The checks mingo leaves out: a path blocked by a scalar, arithmetic or array operators on the wrong type. */
function checkTarget(doc: Document, operator: string, path: string): void {
  const parts = path.split('.');
  let container: unknown = doc;
  let parentPath = '';
  for (const part of parts) {
    if (part.startsWith('$')) return;
    if (container === undefined) return;
    let next: unknown;
    if (Array.isArray(container) && /^\d+$/.test(part)) {
      next = container[Number(part)];
    } else if (isPlainDocument(container)) {
      next = Object.hasOwn(container, part) ? container[part] : undefined;
    } else {
      if (!CREATING.has(operator)) return;
      throw new CommandFailure(28, `Cannot create field '${part}' in element {${parentPath || '_id'}: ${formatValue(container)}}`);
    }
    parentPath = part;
    container = next;
  }
  const target = container;
  if (target === undefined) return;
  if (NUMERIC.has(operator) && !isNumeric(target)) {
    throw new CommandFailure(
      14,
      `Cannot apply ${operator} to a value of non-numeric type. {_id: ${formatValue(doc._id)}} has the field '${path}' of non-numeric type ${typeName(target)}`,
    );
  }
  if (ARRAY_TARGET.has(operator) && !Array.isArray(target)) {
    if (operator === '$push' || operator === '$addToSet') {
      throw new CommandFailure(2, `The field '${path}' must be an array but is of type ${typeName(target)} in document {_id: ${formatValue(doc._id)}}`);
    }
    if (operator === '$pop') throw new CommandFailure(14, `Path '${path}' contains an element of non-array type '${typeName(target)}'`);
    throw new CommandFailure(2, `Cannot apply ${operator} to a non-array value`);
  }
}

function isNumeric(value: unknown): boolean {
  if (typeof value === 'number' || typeof value === 'bigint') return true;
  const type = (value as { _bsontype?: string } | null)?._bsontype;
  return type === 'Long' || type === 'Decimal128' || type === 'Int32' || type === 'Double';
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'double';
  if (value instanceof Date) return 'date';
  if (value instanceof ObjectId) return 'objectId';
  if (isPlainDocument(value)) return 'object';
  return (value as { _bsontype?: string })._bsontype?.toLowerCase() ?? typeof value;
}

/**
 * The document an upsert starts from: the equality conditions of its filter, as mongod
 * builds it (docs: "Upsert with Dotted _id Query" and "upsert behavior").
 */
export function upsertSeed(filter: Document, replacement: boolean): Document {
  const seed: Document = {};
  collectEqualities(filter, seed);
  if (replacement) return seed._id === undefined ? {} : { _id: seed._id };
  return seed;
}

function collectEqualities(filter: Document, seed: Document): void {
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const clause of value) if (isPlainDocument(clause)) collectEqualities(clause, seed);
      continue;
    }
    if (key.startsWith('$')) continue;
    if (value instanceof RegExp) continue;
    if (isPlainDocument(value) && Object.keys(value).some((inner) => inner.startsWith('$'))) {
      if (Object.hasOwn(value, '$eq')) setPath(seed, key, value.$eq);
      continue;
    }
    setPath(seed, key, value);
  }
}

function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split('.');
  let container = doc;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainDocument(container[part])) container[part] = {};
    container = container[part] as Document;
  }
  container[parts[parts.length - 1] as string] = value;
}

/** `_id` first, generated when missing, as mongod stores it. */
export function withId(doc: Document): Document {
  const id = doc._id === undefined ? new ObjectId() : doc._id;
  if (Array.isArray(id)) throw new CommandFailure(2, "can't use an array for _id");
  if (id instanceof RegExp) throw new CommandFailure(2, "can't use a regex for _id");
  if (Object.keys(doc)[0] === '_id') return doc;
  const { _id: _ignored, ...rest } = doc;
  return { _id: id, ...rest };
}
