/**
 * `npm run client:create -- --name N [--grant G]... [--scope S]... [--audience A]...
 *   [--permission introspect|revoke]... [--public] [--first-party] [--cookie-mode] [--id ID]
 *   [--redirect-uri U]... [--require-par] [--post-logout-redirect-uri U]... [--backchannel-logout-uri U]`
 *
 * Creates an OAuth client in MongoDB and prints its client_id and, for a confidential
 * client, its client_secret: once, here, and never again (only a hash is stored).
 */
import { parseArgs } from 'node:util';
import { planClient, saveClient } from '../src/admin/accounts.js';
import { clientCreated } from '../src/events/clients.js';
import { publishScriptEvents } from '../src/events/script-events.js';
import { systemClock } from '../src/clock.js';
import { cryptoRandom } from '../src/random.js';
import { UsageError, withMongoStores } from './admin-store.js';

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
      },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

await withMongoStores(
  'client:create',
  () => {
    const values = options();
    if (!values.name) throw new UsageError('--name is required');
    return planClient(cryptoRandom, {
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
    });
  },
  async (config, { clients }, planned) => {
    const { client, clientSecret } = await saveClient(clients, planned);
    await publishScriptEvents(config, [clientCreated(client, 'client:create')], {
      clock: systemClock,
      random: cryptoRandom,
      print: (line) => console.error(line),
    });
    process.stdout.write(`client_id=${client.clientId}\n`);
    if (clientSecret !== undefined) process.stdout.write(`client_secret=${clientSecret}\n# store the secret now: it is not kept and cannot be shown again\n`);
  },
);
