/**
 * The dev server's admin client credentials, written into KEYS_DIR (mode 0600, ignored by
 * the folder's `.gitignore` of `*`) so that the CLI on the same machine drives the admin
 * API with no set-up step (issue 22 item 1). Never written in production.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const ADMIN_CREDENTIALS_FILE = 'dev-admin-client.json';

export interface AdminCredentials {
  readonly client_id: string;
  readonly client_secret: string;
  /** The server that wrote them. */
  readonly url?: string;
}

export async function writeAdminCredentials(keysDir: string, credentials: AdminCredentials): Promise<string> {
  const file = join(keysDir, ADMIN_CREDENTIALS_FILE);
  // Replace rather than rewrite in place: a file left by another user keeps its mode on overwrite.
  await rm(file, { force: true });
  await writeFile(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return file;
}

/** Undefined when there is no file; throws with the file's name when it cannot be read as credentials. */
export async function readAdminCredentials(keysDir: string): Promise<AdminCredentials | undefined> {
  const file = join(keysDir, ADMIN_CREDENTIALS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  const parsed = JSON.parse(text) as Partial<AdminCredentials>;
  if (typeof parsed.client_id !== 'string' || typeof parsed.client_secret !== 'string') throw new Error(`${file} does not hold client_id and client_secret`);
  return { client_id: parsed.client_id, client_secret: parsed.client_secret, ...(typeof parsed.url === 'string' && { url: parsed.url }) };
}
