/**
 * What the admin scripts share: the server's config, a one-line error and a non-zero exit
 * for any failure, and the MongoDB stores (the embedded dev store lives inside the server
 * process, so these scripts need MONGODB_URI).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, parseConfig, type Config } from '../src/config.js';
import { OAuthError } from '../src/errors.js';
import { createMongoConnection, createMongoStores } from '../src/stores/mongo/connection.js';
import { GRANT_TYPES } from '../src/oauth/grants/index.js';
import { StoreUnavailableError } from '../src/stores/types.js';

export class UsageError extends Error {}

/** The command line's `--options` (strict: no positionals, no unknown option); a mistake in them is a UsageError. */
export function parseOptions<const O extends NonNullable<ParseArgsConfig['options']>>(
  options: O,
): ReturnType<typeof parseArgs<{ strict: true; allowPositionals: false; options: O }>>['values'] {
  try {
    return parseArgs({ strict: true, allowPositionals: false, options }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/**
 * `prepare` checks the arguments (and reads what it needs, such as stdin) before anything
 * connects, so that a typo is reported at once and not after a MongoDB timeout; `run`
 * then gets the stores and what `prepare` returned.
 */
export async function withMongoStores<P>(
  name: string,
  prepare: (config: Config) => P | Promise<P>,
  run: (config: Config, stores: ReturnType<typeof createMongoStores>, prepared: P) => Promise<void>,
): Promise<void> {
  let close: (() => Promise<void>) | undefined;
  try {
    const config = parseConfig(process.env);
    const prepared = await prepare(config);
    if (!config.mongodbUri) throw new UsageError('MONGODB_URI is required: the embedded dev store lives inside the server process');
    const connection = createMongoConnection(config.mongodbUri, { grantTypes: GRANT_TYPES });
    close = () => connection.close();
    await connection.init();
    await run(config, createMongoStores(connection), prepared);
  } catch (err) {
    process.stderr.write(`${name}: ${describe(err)}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  } finally {
    await close?.().catch(() => undefined);
  }
}

/** Runs a script's body with the same one-line error and exit codes (2 for usage, 1 otherwise). */
export async function runScript(name: string, body: (config: Config) => Promise<void>): Promise<void> {
  try {
    await body(parseConfig(process.env));
  } catch (err) {
    process.stderr.write(`${name}: ${describe(err)}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  }
}

function describe(err: unknown): string {
  if (err instanceof ConfigError || err instanceof UsageError) return err.message;
  if (err instanceof OAuthError) return err.description;
  if (err instanceof StoreUnavailableError) return 'MongoDB is unreachable (check MONGODB_URI)';
  return err instanceof Error ? err.message : String(err);
}
