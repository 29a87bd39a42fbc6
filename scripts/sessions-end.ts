/**
 * `npm run sessions:end -- (--id ID | --email E) [--session SID] [--url URL]`
 *
 * Ends a user's sessions through the admin API of a running authority: all of them, or the
 * one `--session` names (the `sid` of its access tokens). The user keeps their account.
 */
import { connectAdminApi } from './admin-api.js';
import { runScript, parseOptions, UsageError } from './admin-store.js';
import { answerHelp } from './run.js';
import { checkUserTarget, resolveUserId } from './user-target.js';

const USAGE = `
usage: npm run sessions:end -- (--id ID | --email E) [--session SID] [--url URL]

Ends every session of a user (refresh-token families and browser sign-ins), or only one.
  --id ID         the user's id;  --email E  or their email
  --session SID   end only this session (its id, the sid claim of its access tokens)
  --url URL       the authority whose admin API to call (default: the dev server, http://127.0.0.1:$PORT);
                  credentials from ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET, else (dev) KEYS_DIR/dev-admin-client.json
`;

function options() {
  const values = parseOptions({ id: { type: 'string' }, email: { type: 'string' }, session: { type: 'string' }, url: { type: 'string' } });
  checkUserTarget(values);
  if (values.session === '') throw new UsageError('--session must not be empty');
  return values;
}

if (!answerHelp(USAGE)) {
  await runScript('sessions:end', async (config) => {
    const values = options();
    const api = await connectAdminApi(config, values.url);
    const userId = await resolveUserId(api, values);
    const path = `/admin/users/${encodeURIComponent(userId)}/sessions${values.session === undefined ? '' : `/${encodeURIComponent(values.session)}`}`;
    const answer = await api.call('DELETE', path);
    process.stdout.write(`user_id=${userId} sessions_ended=${String(answer.sessions_ended)}\n`);
  });
}
