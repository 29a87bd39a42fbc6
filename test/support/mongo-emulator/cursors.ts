/**
 * Server-side cursors. Results are computed when the cursor opens (a snapshot) and handed
 * out in batches: the first batch holds `batchSize` documents (101 by default, as in
 * mongod), later ones `batchSize` or everything left, each capped at 16 MiB.
 */
import { BSON, Long, type Document } from 'bson';
import { CommandFailure } from './errors.js';
import { MAX_BSON_SIZE } from './storage.js';

const DEFAULT_FIRST_BATCH = 101;
/** mongod's cursorTimeoutMillis default: idle cursors are reaped after 10 minutes. */
const IDLE_TIMEOUT_MS = 10 * 60 * 1000;

interface OpenCursor {
  readonly ns: string;
  readonly docs: readonly Document[];
  position: number;
  lastUsed: number;
}

export class CursorRegistry {
  private readonly open = new Map<number, OpenCursor>();
  private nextId = 1 + Math.floor(Math.random() * 2 ** 30);

  /** The reply of a command that returns a cursor (`find`, `aggregate`, `list*`). */
  first(ns: string, docs: readonly Document[], batchSize: number | undefined, singleBatch = false): Document {
    this.reap();
    const batch = takeBatch(docs, 0, batchSize ?? DEFAULT_FIRST_BATCH);
    let id = 0;
    if (!singleBatch && batch.length < docs.length) {
      id = this.nextId++;
      this.open.set(id, { ns, docs, position: batch.length, lastUsed: Date.now() });
    }
    return { cursor: { firstBatch: batch, id: Long.fromNumber(id), ns }, ok: 1 };
  }

  /** The reply of `getMore`. */
  more(id: number, ns: string, batchSize: number | undefined): Document {
    this.reap();
    const cursor = this.open.get(id);
    if (!cursor) throw new CommandFailure(43, `cursor id ${id} not found`);
    if (cursor.ns !== ns) {
      throw new CommandFailure(13, `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`);
    }
    const batch = takeBatch(cursor.docs, cursor.position, batchSize && batchSize > 0 ? batchSize : Infinity);
    cursor.position += batch.length;
    cursor.lastUsed = Date.now();
    const exhausted = cursor.position >= cursor.docs.length;
    if (exhausted) this.open.delete(id);
    return { cursor: { nextBatch: batch, id: Long.fromNumber(exhausted ? 0 : id), ns }, ok: 1 };
  }

  kill(ids: readonly number[]): Document {
    const killed: Long[] = [];
    const notFound: Long[] = [];
    for (const id of ids) (this.open.delete(id) ? killed : notFound).push(Long.fromNumber(id));
    return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
  }

  clear(): void {
    this.open.clear();
  }

  /** Lazily, so that no timer keeps the process alive. */
  private reap(): void {
    const cutoff = Date.now() - IDLE_TIMEOUT_MS;
    for (const [id, cursor] of this.open) if (cursor.lastUsed < cutoff) this.open.delete(id);
  }
}

function takeBatch(docs: readonly Document[], start: number, size: number): Document[] {
  const batch: Document[] = [];
  let bytes = 0;
  for (let i = start; i < docs.length && batch.length < size; i++) {
    const doc = docs[i] as Document;
    bytes += BSON.calculateObjectSize(doc);
    if (batch.length > 0 && bytes > MAX_BSON_SIZE) break;
    batch.push(doc);
  }
  return batch;
}
