/**
 * The admin scripts' default mode (issue 22): call the admin API of a running authority.
 * `--url` names it (default: the dev server that wrote the credentials file, else
 * http://127.0.0.1:$PORT);
 * credentials come from ADMIN_CLIENT_ID / ADMIN_CLIENT_SECRET, else, in dev, from the file
 * the dev server writes into KEYS_DIR.
 */
import type { Config } from '../src/config.js';
import { ADMIN_CREDENTIALS_FILE, readAdminCredentials } from '../src/dev/admin-credentials.js';
import { UsageError } from './admin-store.js';

export interface AdminApi {
  call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>>;
}

export class ApiError extends Error {}

export async function connectAdminApi(config: Config, url: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<AdminApi> {
  let serverUrl = url;
  let clientId = env.ADMIN_CLIENT_ID;
  let clientSecret = env.ADMIN_CLIENT_SECRET;
  if (!clientId || !clientSecret) {
    const saved = config.production ? undefined : await readAdminCredentials(config.keysDir);
    if (!saved) {
      throw new UsageError(
        `no admin credentials: set ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET (a client with the admin permission), or start the dev server, which writes ${ADMIN_CREDENTIALS_FILE} into KEYS_DIR`,
      );
    }
    ({ client_id: clientId, client_secret: clientSecret } = saved);
    serverUrl ??= saved.url;
  }
  const base = (serverUrl ?? `http://127.0.0.1:${config.port}`).replace(/\/+$/, '');
  const send = async (path: string, init: RequestInit) => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, init);
    } catch {
      throw new ApiError(`cannot reach ${base} (is the server running? --url names another one)`);
    }
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) throw new ApiError(`${res.status} ${String(body.error ?? '')}: ${String(body.error_description ?? res.statusText)}`);
    return body;
  };
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
  const token = await send('/oauth/token', {
    method: 'POST',
    headers: { Authorization: basic, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }).toString(),
  });
  const bearer = `Bearer ${String(token.access_token)}`;
  return {
    call: (method, path, body) =>
      send(path, {
        method,
        headers: { Authorization: bearer, ...(body !== undefined && { 'Content-Type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      }),
  };
}

/**
 * Whether an admin script writes to MongoDB itself rather than calling the admin API:
 * with `--direct`, or when nothing names an API to call (no `--url`, no ADMIN_CLIENT_ID)
 * and MONGODB_URI is set, as these scripts always did (../shared/CONTRACT.md: they create
 * in the store). On a fresh dev clone (no MONGODB_URI) the API of the dev server is used.
 */
export function directMode(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  if (argv.includes('--direct')) return true;
  const namesApi = argv.some((arg) => arg === '--url' || arg.startsWith('--url=')) || Boolean(env.ADMIN_CLIENT_ID);
  return !namesApi && Boolean(env.MONGODB_URI);
}
