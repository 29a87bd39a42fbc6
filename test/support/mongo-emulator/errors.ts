/**
 * Server errors as mongod reports them: `{ ok: 0, errmsg, code, codeName }`. Codes and names
 * follow src/mongo/base/error_codes.yml of the MongoDB server, so the driver classifies
 * them exactly as it would a real server's.
 */
import type { Document } from 'bson';

const CODE_NAMES: Readonly<Record<number, string>> = {
  1: 'InternalError',
  2: 'BadValue',
  9: 'FailedToParse',
  13: 'Unauthorized',
  14: 'TypeMismatch',
  16: 'InvalidLength',
  20: 'IllegalOperation',
  26: 'NamespaceNotFound',
  27: 'IndexNotFound',
  28: 'PathNotViable',
  40: 'ConflictingUpdateOperators',
  43: 'CursorNotFound',
  48: 'NamespaceExists',
  52: 'DollarPrefixedFieldName',
  59: 'CommandNotFound',
  66: 'ImmutableField',
  67: 'CannotCreateIndex',
  72: 'InvalidOptions',
  73: 'InvalidNamespace',
  85: 'IndexOptionsConflict',
  86: 'IndexKeySpecsConflict',
  115: 'CommandNotSupported',
  171: 'CannotIndexParallelArrays',
  197: 'InvalidIndexSpecificationOption',
  352: 'UnsupportedOpQueryCommand',
  10334: 'BSONObjectTooLarge',
  11000: 'DuplicateKey',
};

/** A command (or one write statement) failed the way mongod would fail it. */
export class CommandFailure extends Error {
  readonly codeName: string;

  constructor(
    readonly code: number,
    errmsg: string,
    /** Extra fields of the reply, e.g. `keyPattern`/`keyValue` of a duplicate key. */
    readonly extra: Document = {},
  ) {
    super(errmsg);
    this.name = 'CommandFailure';
    // IDL parse errors have no symbolic name in mongod: it reports `Location<code>`.
    this.codeName = CODE_NAMES[code] ?? `Location${code}`;
  }

  /** The `ok: 0` reply of a failed command. */
  toReply(): Document {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra };
  }

  /** One entry of `writeErrors` for a failed statement of insert/update/delete. */
  toWriteError(index: number): Document {
    return { index, code: this.code, errmsg: this.message, ...this.extra };
  }
}

/** Anything thrown that is not a CommandFailure (a mingo error, a bug) as a CommandFailure. */
export function asFailure(err: unknown): CommandFailure {
  if (err instanceof CommandFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  // mingo rejects unknown operators and malformed expressions with plain Errors; mongod
  // answers those with BadValue, so the driver raises a MongoServerError either way.
  return new CommandFailure(2, message);
}
