/**
 * Maps driver and mongoose failures onto the store error contract of `stores/types.ts`:
 * unreachable backend → StoreUnavailableError, unique violation → DuplicateKeyError,
 * anything else is a bug and propagates unchanged.
 */
import mongoose from 'mongoose';
import { DuplicateKeyError, StoreUnavailableError } from '../types.js';

const { mongo } = mongoose;

/** Driver errors that mean "could not reach a usable server", not "the server said no". */
const UNREACHABLE: readonly (abstract new (...args: never[]) => Error)[] = [
  mongo.MongoNetworkError, // includes timeouts and a cleared pool
  mongo.MongoServerSelectionError,
  mongo.MongoTopologyClosedError,
  mongo.MongoNotConnectedError,
  mongo.MongoServerClosedError,
  mongo.MongoClientClosedError,
  mongo.MongoOperationTimeoutError,
  mongoose.Error.MongooseServerSelectionError,
];

/**
 * Server replies that mean the node cannot serve right now (error_codes.yml categories
 * NotPrimaryError, ShutdownError, NetworkError, ExceededTimeLimitError): HostUnreachable,
 * HostNotFound, MaxTimeMSExpired, WriteConcernFailed, NetworkTimeout, ShutdownInProgress,
 * PrimarySteppedDown, ExceededTimeLimit, SocketException, LegacyNotPrimary,
 * NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange,
 * NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary. WriteConcernFailed (a write concern
 * timeout) may leave the write applied: a 503 still tells the caller to retry, and our
 * writes are conditional or unique, so a retry cannot apply one twice.
 */
const UNAVAILABLE_CODES = new Set([6, 7, 50, 64, 89, 91, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436]);

/** Labels the server puts on errors that are transient by definition (overload, a retryable write). */
const UNAVAILABLE_LABELS = ['SystemOverloadedError', 'RetryableWriteError'];

/**
 * Mongoose's own connection-state errors are plain MongooseErrors: raised when the initial
 * connection has not completed (`bufferCommands: false`) or after `close()`.
 */
const MONGOOSE_CONNECTION_STATE = /before initial connection|force closed|buffering timed out/;

export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (UNREACHABLE.some((type) => err instanceof type)) return true;
  const code = (err as { code?: unknown }).code;
  if (err instanceof mongo.MongoServerError) {
    if (typeof code === 'number' && UNAVAILABLE_CODES.has(code)) return true;
    if (UNAVAILABLE_LABELS.some((label) => err.hasErrorLabel(label))) return true;
  }
  return err.name === 'MongooseError' && MONGOOSE_CONNECTION_STATE.test(err.message);
}

export function isDuplicateKey(err: unknown): boolean {
  return err instanceof mongo.MongoServerError && err.code === 11000;
}

/**
 * Runs `operation`, translating failures for `store`. A duplicate key is reported as
 * `duplicateField` (the only unique field besides `_id`, which the adapters generate).
 */
export async function translate<T>(store: string, operation: () => Promise<T>, duplicateField?: string): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (duplicateField !== undefined && isDuplicateKey(err)) throw new DuplicateKeyError(duplicateField);
    if (isUnavailable(err)) throw new StoreUnavailableError(store, { cause: err });
    throw err;
  }
}

/** The connection's ping, reported under `store`'s name. */
export async function pingAs(store: string, ping: () => Promise<void>): Promise<void> {
  try {
    await ping();
  } catch (err) {
    throw err instanceof StoreUnavailableError ? new StoreUnavailableError(store, { cause: err.cause ?? err }) : err;
  }
}
