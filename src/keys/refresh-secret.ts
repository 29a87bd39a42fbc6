/**
 * The refresh-token MAC key when REFRESH_TOKEN_SECRET is unset: `KEYS_DIR/refresh-token.secret`
 * (mode 0600), kept beside the signing keys because it is as secret, as long-lived and as
 * shared between instances as they are, and KEYS_DIR is already the directory every
 * instance reads and every backup must hold.
 *
 * `keys:rotate` creates it when missing, and so does a server outside production. A server in
 * production only reads it: an instance that made its own would refuse every other
 * instance's refresh tokens, so a missing file is a start-up error naming what to do.
 *
 * It is created without ever being visible half-written: written to a temporary file,
 * then hard-linked to its name, which fails if another process got there first (that
 * one's secret is then the one read back).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyRingError } from './errors.js';
import { ensureDir, fsyncDir, listDir, modeProblem, writeNewFileSynced } from './key-files.js';

export const REFRESH_SECRET_FILE = 'refresh-token.secret';
/** Marks a creator's temporary name (not `.tmp-`, which a rotation sweeps away without our lock). */
const CREATING = '.creating-';
const STALE_TEMP_MS = 60_000;
/** The same floor as REFRESH_TOKEN_SECRET's. */
const MIN_CHARS = 32;

/** The secret in KEYS_DIR, or undefined when there is none. Throws KeyRingError for a file that is there but unusable. */
export async function readRefreshSecret(dir: string, { production }: { production: boolean }): Promise<string | undefined> {
  const file = join(dir, REFRESH_SECRET_FILE);
  let handle;
  try {
    // Symlinks are followed, as for key files (a Kubernetes Secret mount is made of them);
    // the mode is checked on what they point to.
    handle = await open(file, constants.O_RDONLY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new KeyRingError(`cannot read the refresh-token secret (${code ?? 'unknown error'})`, file);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > 4096) throw new KeyRingError('not a refresh-token secret (expected a small regular file)', file);
    const loose = modeProblem(info, 'file');
    if (loose && production) throw new KeyRingError(loose, file);
    const secret = (await handle.readFile('utf8')).trim();
    if (secret.length < MIN_CHARS) throw new KeyRingError(`the refresh-token secret must be at least ${MIN_CHARS} characters`, file);
    return secret;
  } finally {
    await handle.close();
  }
}

/**
 * The secret in KEYS_DIR, created (with the directory, 0700) when missing. Temporary names
 * left by a creator that crashed (a second link to the secret, or a lone file) are removed
 * once they are a minute old, when no creator can still be using them.
 */
export async function ensureRefreshSecret(dir: string, { production }: { production: boolean }): Promise<{ secret: string; created: boolean }> {
  const existing = await readRefreshSecret(dir, { production });
  if (existing !== undefined) {
    await removeStaleTemps(dir);
    return { secret: existing, created: false };
  }
  await ensureDir(dir);
  const file = join(dir, REFRESH_SECRET_FILE);
  const temp = `${file}${CREATING}${process.pid}-${randomBytes(4).toString('hex')}`;
  let created = false;
  try {
    await writeNewFileSynced(temp, `${randomBytes(48).toString('base64url')}\n`);
    try {
      await link(temp, file);
      created = true;
      await fsyncDir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } catch (err) {
    if (err instanceof KeyRingError) throw err;
    throw new KeyRingError(`cannot create the refresh-token secret (${(err as NodeJS.ErrnoException).code ?? 'unknown error'})`, file);
  } finally {
    await rm(temp, { force: true });
  }
  const secret = await readRefreshSecret(dir, { production });
  if (secret === undefined) throw new KeyRingError('the refresh-token secret vanished right after it was created', file);
  return { secret, created };
}

async function removeStaleTemps(dir: string): Promise<void> {
  const names = (await listDir(dir)) ?? [];
  const cutoff = Date.now() - STALE_TEMP_MS;
  for (const name of names.filter((entry) => entry.startsWith(`${REFRESH_SECRET_FILE}${CREATING}`))) {
    const path = join(dir, name);
    const info = await lstat(path).catch(() => undefined);
    if (info && info.mtimeMs < cutoff) await rm(path, { force: true });
  }
}
