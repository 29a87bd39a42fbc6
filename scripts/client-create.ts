/**
 * Creates an OAuth client and prints its client_id and, for a confidential client, its
 * client_secret: once, here, and never again (only a hash is stored). Through the admin
 * API of a running authority, or straight into MongoDB with `--direct` (see `directMode`).
 */
import { parseArgs } from 'node:util';
import { planClient, saveClient, type NewClientInput } from '../src/admin/accounts.js';
import { clientCreated } from '../src/events/clients.js';
import { publishScriptEvents } from '../src/events/script-events.js';
import { systemClock } from '../src/clock.js';
import { cryptoRandom } from '../src/random.js';
import { ID_TOKEN_SIGNING_ALGS } from '../src/tokens/id-token.js';
import { connectAdminApi, directMode } from './admin-api.js';
import { runScript, UsageError, withMongoStores } from './admin-store.js';
import { answerHelp } from './run.js';

const USAGE = `
usage: npm run client:create -- --name N [--grant G]... [--scope S]... [--audience A]...
         [--permission introspect|revoke|admin]... [--public] [--first-party] [--cookie-mode]
         [--id ID] [--redirect-uri U]... [--require-par] [--post-logout-redirect-uri U]...
         [--backchannel-logout-uri U] [--id-token-signed-response-alg ALG] [--url URL | --direct]

Creates an OAuth client and prints client_id and client_secret (once).
  --id-token-signed-response-alg ALG
              how its ID tokens and logout tokens are signed: ${ID_TOKEN_SIGNING_ALGS.join(' or ')} (default RS256; never none)
  --url URL   the authority whose admin API to call (default: the dev server, http://127.0.0.1:$PORT);
              credentials from ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET, else (dev) KEYS_DIR/dev-admin-client.json
  --direct    write straight to MongoDB (MONGODB_URI) instead, e.g. to create the first admin client:
              --direct --name admin --grant client_credentials --scope admin --permission admin
              (also the default when MONGODB_URI is set and neither --url nor ADMIN_CLIENT_ID names an API)
`;

function options() {
  try {
    return parseArgs({
      strict: true,
      options: {
        name: { type: 'string' },
        id: { type: 'string' },
        grant: { type: 'string', multiple: true, default: [] },
        scope: { type: 'string', multiple: true, default: [] },
        audience: { type: 'string', multiple: true, default: [] },
        permission: { type: 'string', multiple: true, default: [] },
        public: { type: 'boolean', default: false },
        'first-party': { type: 'boolean', default: false },
        'cookie-mode': { type: 'boolean', default: false },
        'redirect-uri': { type: 'string', multiple: true, default: [] },
        'require-par': { type: 'boolean', default: false },
        'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
        'backchannel-logout-uri': { type: 'string' },
        'id-token-signed-response-alg': { type: 'string' },
        url: { type: 'string' },
        direct: { type: 'boolean', default: false },
      },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function input(values: ReturnType<typeof options>): NewClientInput {
  if (!values.name) throw new UsageError('--name is required');
  if (values.direct && values.url !== undefined) throw new UsageError('--direct and --url exclude each other');
  return {
    name: values.name,
    clientId: values.id,
    grants: values.grant,
    scopes: values.scope,
    audiences: values.audience,
    permissions: values.permission,
    public: values.public,
    firstParty: values['first-party'],
    cookieMode: values['cookie-mode'],
    redirectUris: values['redirect-uri'],
    requirePar: values['require-par'],
    postLogoutRedirectUris: values['post-logout-redirect-uri'],
    backchannelLogoutUri: values['backchannel-logout-uri'],
    idTokenSignedResponseAlg: values['id-token-signed-response-alg'],
  };
}

function print(clientId: string, clientSecret: string | undefined): void {
  process.stdout.write(`client_id=${clientId}\n`);
  if (clientSecret !== undefined) process.stdout.write(`client_secret=${clientSecret}\n# store the secret now: it is not kept and cannot be shown again\n`);
}

if (!answerHelp(USAGE)) {
  if (directMode(process.argv)) {
    await withMongoStores(
      'client:create',
      () => planClient(cryptoRandom, input(options())),
      async (config, { clients }, planned) => {
        const { client, clientSecret } = await saveClient(clients, planned);
        await publishScriptEvents(config, [clientCreated(client, 'client:create')], {
          clock: systemClock,
          random: cryptoRandom,
          print: (line) => console.error(line),
        });
        print(client.clientId, clientSecret);
      },
    );
  } else {
    await runScript('client:create', async (config) => {
      const values = options();
      const checked = input(values);
      // Checked here first, so that a typo is reported without a round trip.
      planClient(cryptoRandom, checked);
      const api = await connectAdminApi(config, values.url);
      const created = await api.call('POST', '/admin/clients', {
        name: checked.name,
        ...(checked.clientId !== undefined && { client_id: checked.clientId }),
        grant_types: checked.grants,
        scopes: checked.scopes,
        audiences: checked.audiences,
        permissions: checked.permissions,
        redirect_uris: checked.redirectUris,
        public: checked.public,
        first_party: checked.firstParty,
        cookie_mode: checked.cookieMode,
        require_par: checked.requirePar,
        post_logout_redirect_uris: checked.postLogoutRedirectUris,
        ...(checked.backchannelLogoutUri !== undefined && { backchannel_logout_uri: checked.backchannelLogoutUri }),
        ...(checked.idTokenSignedResponseAlg !== undefined && { id_token_signed_response_alg: checked.idTokenSignedResponseAlg }),
      });
      print(String((created.client as { client_id: string }).client_id), created.client_secret as string | undefined);
    });
  }
}
