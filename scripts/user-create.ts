/**
 * `npm run user:create -- --email E --password-stdin [--role R]... [--name N] [--url URL | --direct]`
 *
 * Creates a user through the admin API of a running authority (or, with --direct, in MongoDB). The password is read from standard input (never argv, which
 * other users of the machine can see in the process list); one trailing newline is dropped.
 */
import { text } from 'node:stream/consumers';
import { checkNewUser, createUser } from '../src/admin/accounts.js';
import { createPasswordHasher } from '../src/users/passwords.js';
import { connectAdminApi, directMode } from './admin-api.js';
import { runScript, parseOptions, UsageError, withMongoStores } from './admin-store.js';
import { answerHelp } from './run.js';

async function prepare() {
  const values = parseOptions({
    email: { type: 'string' },
    name: { type: 'string' },
    'password-stdin': { type: 'boolean', default: false },
    role: { type: 'string', multiple: true, default: [] },
    url: { type: 'string' },
    direct: { type: 'boolean', default: false },
  });
  if (!values.email) throw new UsageError('--email is required');
  if (!values['password-stdin']) throw new UsageError('--password-stdin is required: the password is read from standard input, never from arguments');
  // A terminal would echo the password as it is typed, and wait silently for an EOF.
  if (process.stdin.isTTY)
    throw new UsageError(`--password-stdin reads a pipe, not a terminal: printf '%s' "$PASSWORD" | npm run user:create -- --email ... --password-stdin`);
  const password = (await text(process.stdin)).replace(/\r?\n$/, '');
  if (values.direct && values.url !== undefined) throw new UsageError('--direct and --url exclude each other');
  return { url: values.url, ...checkNewUser({ email: values.email, password, roles: values.role, name: values.name }) };
}

const USAGE = `usage: printf '%s' "$PASSWORD" | npm run user:create -- --email E --password-stdin [--role R]... [--name N]
         [--url URL | --direct]
Creates a user; the password is read from standard input, never from arguments.
  --url URL   the authority whose admin API to call (default: the dev server, http://127.0.0.1:$PORT);
              credentials from ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET, else (dev) KEYS_DIR/dev-admin-client.json
  --direct    write straight to MongoDB (MONGODB_URI) instead
              (also the default when MONGODB_URI is set and neither --url nor ADMIN_CLIENT_ID names an API)`;

function print(user: { id: string; email: string; roles: readonly string[] }): void {
  process.stdout.write(`user_id=${user.id} email=${user.email} roles=${user.roles.join(',') || '-'}\n`);
}

if (answerHelp(USAGE)) {
  // answered
} else if (directMode(process.argv)) {
  await withMongoStores('user:create', prepare, async (config, { users }, input) => {
    const hasher = await createPasswordHasher(config.argon2);
    print(await createUser({ users, hasher }, input));
  });
} else {
  await runScript('user:create', async (config) => {
    const input = await prepare();
    const api = await connectAdminApi(config, input.url);
    const created = await api.call('POST', '/admin/users', {
      email: input.email,
      password: input.password,
      roles: input.roles,
      ...(input.name !== undefined && { name: input.name }),
    });
    print(created.user as { id: string; email: string; roles: string[] });
  });
}
