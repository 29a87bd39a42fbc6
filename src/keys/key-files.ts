/**
 * The on-disk layout of KEYS_DIR (mode 0700):
 *
 *   keyring.json        the manifest: every key's kid, alg, state and dates (mode 0600)
 *   <kid>.jwk.json      one private JWK per key (mode 0600)
 *   .keyring.lock       present while a rotation runs (see lock.ts)
 *   refresh-token.secret  the refresh-token MAC key while REFRESH_TOKEN_SECRET is unset
 *                       (see refresh-secret.ts; not part of the key ring)
 *
 * States live in the manifest, not beside each key, so that a rotation (which changes two
 * keys' states at once) is a single atomic rename that readers see either wholly or not at
 * all. Key files are written before the manifest names them and deleted after it stops
 * naming them, so every manifest a reader can see refers only to files that exist, except
 * for the instant a removal races a read (the loader retries that).
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { isKeyAlg, KEY_ALGS, type KeyAlg } from './algorithms.js';
import { KeyRingError } from './errors.js';

export const MANIFEST_FILE = 'keyring.json';
export const LOCK_FILE = '.keyring.lock';
const KEY_FILE_SUFFIX = '.jwk.json';
const TEMP_MARKER = '.tmp-';

/** A base64url SHA-256 thumbprint (RFC 7638): also safe as a file name. */
export const KID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Key files are a few kB; anything far larger is not one of ours. */
const MAX_FILE_BYTES = 64 * 1024;

export type KeyState = 'next' | 'active' | 'retired';

/** What the manifest says about one key. Times are milliseconds since the epoch. */
export interface KeyMeta {
  readonly kid: string;
  readonly alg: KeyAlg;
  /** `next`: published, not signing; `active`: the one signing key; `retired`: published until its tokens expire. */
  readonly state: KeyState;
  readonly createdAt: number;
  readonly activatedAt: number | undefined;
  readonly retiredAt: number | undefined;
}

export const keyFileName = (kid: string): string => `${kid}${KEY_FILE_SUFFIX}`;
export const isKeyFileName = (name: string): boolean => name.endsWith(KEY_FILE_SUFFIX) && !name.includes(TEMP_MARKER);
export const isTempFileName = (name: string): boolean => name.includes(TEMP_MARKER);

const isoDate = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time' });

const manifestSchema = z.object({
  version: z.literal(1, { message: 'must be 1' }),
  keys: z.array(
    z.object({
      kid: z.string().regex(KID_PATTERN, { message: 'must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)' }),
      alg: z.string().refine(isKeyAlg, { message: `unsupported alg (supported: ${KEY_ALGS.join(', ')})` }),
      state: z.enum(['next', 'active', 'retired'], { message: 'must be next, active or retired' }),
      createdAt: isoDate,
      activatedAt: isoDate.nullable().default(null),
      retiredAt: isoDate.nullable().default(null),
    }),
  ),
});

/** Reads the manifest; undefined when it does not exist. Throws KeyRingError naming the file otherwise. */
export async function readManifest(dir: string): Promise<KeyMeta[] | undefined> {
  const file = join(dir, MANIFEST_FILE);
  const text = await readSmallFile(file);
  if (text === undefined) return undefined;
  const parsed = manifestSchema.safeParse(parseJson(text, file));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new KeyRingError(`invalid key manifest: ${where}${issue?.message ?? 'unexpected shape'}`, file);
  }
  const keys = parsed.data.keys.map((entry, index): KeyMeta => {
    const meta: KeyMeta = {
      kid: entry.kid,
      alg: entry.alg as KeyAlg,
      state: entry.state,
      createdAt: Date.parse(entry.createdAt),
      activatedAt: entry.activatedAt === null ? undefined : Date.parse(entry.activatedAt),
      retiredAt: entry.retiredAt === null ? undefined : Date.parse(entry.retiredAt),
    };
    if (meta.state !== 'next' && meta.activatedAt === undefined) {
      throw new KeyRingError(`invalid key manifest: keys.${index}: a ${meta.state} key needs activatedAt`, file);
    }
    if (meta.state === 'retired' && meta.retiredAt === undefined) {
      throw new KeyRingError(`invalid key manifest: keys.${index}: a retired key needs retiredAt`, file);
    }
    return meta;
  });
  const seen = new Set<string>();
  for (const key of keys) {
    if (seen.has(key.kid)) throw new KeyRingError(`invalid key manifest: kid ${key.kid} is listed twice`, file);
    seen.add(key.kid);
  }
  const actives = keys.filter((key) => key.state === 'active');
  if (actives.length > 1) {
    throw new KeyRingError(
      `${actives.length} keys claim state "active" (${actives.map((key) => key.kid).join(', ')}); exactly one may sign. ` +
        'Set all but one to "retired" (with retiredAt) and run `npm run keys:rotate`',
      file,
    );
  }
  return keys;
}

/** A key's metadata as the manifest (and `keys:list --json`) write it: dates as ISO strings. */
export function manifestEntry(key: KeyMeta) {
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  return {
    kid: key.kid,
    alg: key.alg,
    state: key.state,
    createdAt: iso(key.createdAt),
    activatedAt: iso(key.activatedAt),
    retiredAt: iso(key.retiredAt),
  };
}

export function serializeManifest(keys: readonly KeyMeta[]): string {
  return `${JSON.stringify({ version: 1, keys: keys.map(manifestEntry) }, null, 2)}\n`;
}

/** The parsed JSON of a key file. The text is never echoed: it holds a private key. */
export async function readKeyFile(file: string): Promise<Record<string, unknown>> {
  const text = await readSmallFile(file);
  if (text === undefined) throw new KeyRingError('key file is missing (the manifest lists it)', file);
  const value = parseJson(text, file);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new KeyRingError('not a JSON Web Key (expected a JSON object)', file);
  }
  return value as Record<string, unknown>;
}

async function readSmallFile(file: string): Promise<string | undefined> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new KeyRingError('not a regular file', file);
    if (info.size > MAX_FILE_BYTES) throw new KeyRingError(`file is ${info.size} bytes, too large to be a key file`, file);
    return await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof KeyRingError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new KeyRingError(`cannot read (${code ?? 'unknown error'})`, file);
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // V8's message quotes the text around the error, which may be private key material.
    throw new KeyRingError('not valid JSON', file);
  }
}

/** A private key other users can read is as good as published, so any group/other bit is flagged. */
export function modeProblem(info: Stats, kind: 'file' | 'dir'): string | undefined {
  if (process.platform === 'win32') return undefined;
  const mode = info.mode & 0o777;
  if ((mode & 0o077) === 0) return undefined;
  return `mode ${mode.toString(8).padStart(4, '0')} gives other users access to signing keys (want ${kind === 'dir' ? '0700' : '0600'})`;
}

/**
 * Creates `dir` (and parents) with mode 0700 when missing, with a `.gitignore` of `*`
 * inside, so that a key folder made anywhere in a checkout is never committed. True when it
 * was created.
 */
export async function ensureDir(dir: string): Promise<boolean> {
  try {
    await stat(dir);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new KeyRingError(`cannot access (${(err as NodeJS.ErrnoException).code ?? 'unknown error'})`, dir);
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, '.gitignore'), '# signing keys and secrets: never commit them\n*\n', { mode: 0o600, flag: 'wx' }).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    },
  );
  return true;
}

/**
 * Replaces `file` atomically with `data`: write a temporary file, fsync it, rename it over
 * the target, fsync the directory so the rename itself survives a crash.
 */
export async function writeFileAtomic(file: string, data: string, dir: string): Promise<void> {
  const temp = `${file}${TEMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeNewFileSynced(temp, data);
  try {
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** Creates `file` (it must not exist) with mode 0600, writes `data` and fsyncs it; removes it again on failure. */
export async function writeNewFileSynced(file: string, data: string): Promise<void> {
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(file, { force: true });
    throw err;
  }
  await handle.close();
}

export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function listDir(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new KeyRingError(`cannot list (${code ?? 'unknown error'})`, dir);
  }
}
