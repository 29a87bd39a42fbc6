/**
 * Keys and secrets a development server made (issue 22 item 4). `npm start` in dev creates
 * a signing key and the refresh-token secret in KEYS_DIR by itself; a production server in
 * the same folder must not inherit them (they sat in a developer's checkout, with whatever
 * copies and backups that implies). The dev server lists every file it makes in
 * `KEYS_DIR/dev-made.json`; a production server refuses to start while any file listed
 * there still exists, and `keys:rotate` in production replaces them and clears the list.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyRingError } from './errors.js';
import { listDir, writeFileAtomic } from './key-files.js';

export const DEV_MADE_FILE = 'dev-made.json';

/** The command that replaces them, as the refusal and the README name it. */
export const REPLACE_DEV_KEYS_COMMAND = 'NODE_ENV=production npm run keys:rotate';

/** Names (in `dir`) the list holds whose files still exist. */
export async function readDevMade(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(dir, DEV_MADE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new KeyRingError(`cannot read the list of development keys (${(err as NodeJS.ErrnoException).code ?? 'unknown error'})`, join(dir, DEV_MADE_FILE));
  }
  let names: unknown;
  try {
    names = (JSON.parse(text) as { files?: unknown }).files;
  } catch {
    names = undefined;
  }
  // A list that cannot be read marks everything: fail closed.
  if (!Array.isArray(names) || !names.every((name) => typeof name === 'string')) {
    throw new KeyRingError(`not a list of development keys; delete it only if no file in ${dir} was made by a dev server`, join(dir, DEV_MADE_FILE));
  }
  const present = new Set((await listDir(dir)) ?? []);
  return (names as string[]).filter((name) => present.has(name));
}

/** Adds `name` to the list (the dev server, right after making the file). */
export async function markDevMade(dir: string, name: string): Promise<void> {
  const names = await readDevMade(dir).catch((): string[] => []);
  if (!names.includes(name)) names.push(name);
  await writeDevMade(dir, names);
}

/** Drops `names` from the list (keys:rotate in production, once it replaced them). */
export async function clearDevMade(dir: string, names: readonly string[]): Promise<void> {
  const left = (await readDevMade(dir)).filter((name) => !names.includes(name));
  await writeDevMade(dir, left);
}

async function writeDevMade(dir: string, names: readonly string[]): Promise<void> {
  const body = {
    note: `made by a development server; a production server refuses to start while these files exist: run \`${REPLACE_DEV_KEYS_COMMAND}\``,
    files: names,
  };
  await writeFileAtomic(join(dir, DEV_MADE_FILE), `${JSON.stringify(body, null, 2)}\n`, dir);
}

/** Production start-up: throws KeyRingError naming the files and the command when any remain. */
export async function refuseDevMade(dir: string, options: { ignore?: readonly string[] } = {}): Promise<void> {
  const names = (await readDevMade(dir)).filter((name) => !options.ignore?.includes(name));
  if (names.length === 0) return;
  throw new KeyRingError(
    `holds keys and secrets a development server made (${names.map((name) => join(dir, name)).join(', ')}): ` +
      `a production server does not use them; run \`${REPLACE_DEV_KEYS_COMMAND}\` with the production environment to replace them`,
    dir,
  );
}
