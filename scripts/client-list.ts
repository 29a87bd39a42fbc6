/**
 * `npm run client:list -- [--limit N] [--json] [--url URL]`
 *
 * Lists the OAuth clients through the admin API of a running authority, every page of
 * them: one line per client (id, type, grants, scopes, name), or their JSON with --json.
 * Never a secret: the API has none to show.
 */
import { connectAdminApi } from './admin-api.js';
import { runScript, parseOptions, UsageError } from './admin-store.js';
import { answerHelp } from './run.js';

const USAGE = `
usage: npm run client:list -- [--limit N] [--json] [--url URL]

Lists every OAuth client (client_id, type, grant types, scopes, name), through the admin API.
  --limit N   clients per request (1 to 200, default 100); every page is listed
  --json      one JSON object per line instead of the table
  --url URL   the authority whose admin API to call (default: the dev server, http://127.0.0.1:$PORT);
              credentials from ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET, else (dev) KEYS_DIR/dev-admin-client.json
`;

interface ListedClient {
  client_id: string;
  name: string;
  type: string;
  grant_types: string[];
  scopes: string[];
}

function options() {
  const values = parseOptions({ limit: { type: 'string', default: '100' }, json: { type: 'boolean', default: false }, url: { type: 'string' } });
  if (!/^[0-9]{1,3}$/.test(values.limit) || Number(values.limit) < 1 || Number(values.limit) > 200) throw new UsageError('--limit must be 1 to 200');
  return { ...values, limit: Number(values.limit) };
}

if (!answerHelp(USAGE)) {
  await runScript('client:list', async (config) => {
    const values = options();
    const api = await connectAdminApi(config, values.url);
    let cursor: string | null = null;
    do {
      const query: string = `limit=${values.limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const page = await api.call('GET', `/admin/clients?${query}`);
      for (const client of page.clients as ListedClient[]) {
        process.stdout.write(
          values.json
            ? `${JSON.stringify(client)}\n`
            : `${client.client_id}\t${client.type}\t${client.grant_types.join(',') || '-'}\t${client.scopes.join(' ') || '-'}\t${client.name}\n`,
        );
      }
      cursor = (page.next_cursor as string | null) ?? null;
    } while (cursor !== null);
  });
}
