/**
 * `npm run user:create -- --email E --password-stdin [--role R]... [--name N]`
 *
 * Creates a user in MongoDB. The password is read from standard input (never argv, which
 * other users of the machine can see in the process list); one trailing newline is dropped.
 */
import { text } from 'node:stream/consumers';
import { parseArgs } from 'node:util';
import { checkNewUser, createUser } from '../src/admin/accounts.js';
import { createPasswordHasher } from '../src/users/passwords.js';
import { UsageError, withMongoStores } from './admin-store.js';
import { answerHelp } from './run.js';

async function prepare() {
  let values;
  try {
    ({ values } = parseArgs({
      strict: true,
      options: {
        email: { type: 'string' },
        name: { type: 'string' },
        'password-stdin': { type: 'boolean', default: false },
        role: { type: 'string', multiple: true, default: [] },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!values.email) throw new UsageError('--email is required');
  if (!values['password-stdin']) throw new UsageError('--password-stdin is required: the password is read from standard input, never from arguments');
  // A terminal would echo the password as it is typed, and wait silently for an EOF.
  if (process.stdin.isTTY)
    throw new UsageError(`--password-stdin reads a pipe, not a terminal: printf '%s' "$PASSWORD" | npm run user:create -- --email ... --password-stdin`);
  const password = (await text(process.stdin)).replace(/\r?\n$/, '');
  return checkNewUser({ email: values.email, password, roles: values.role, name: values.name });
}

const USAGE = `usage: printf '%s' "$PASSWORD" | npm run user:create -- --email E --password-stdin [--role R]... [--name N]
Creates a user in MongoDB (MONGODB_URI); the password is read from standard input, never from arguments.`;

if (!answerHelp(USAGE))
  await withMongoStores('user:create', prepare, async (config, { users }, input) => {
    const hasher = await createPasswordHasher(config.argon2);
    const user = await createUser({ users, hasher }, input);
    process.stdout.write(`user_id=${user.id} email=${user.email} roles=${user.roles.join(',') || '-'}\n`);
  });
