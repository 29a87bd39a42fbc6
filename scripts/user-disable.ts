/**
 * `npm run user:disable -- (--id ID | --email E) [--enable] [--url URL]`
 *
 * Disables a user through the admin API of a running authority: no login or refresh from
 * now on, and every session ends at once (back-channel logout, security events). `--enable`
 * lets them sign in again.
 */
import { connectAdminApi } from './admin-api.js';
import { parseOptions, runScript } from './admin-store.js';
import { answerHelp } from './run.js';
import { checkUserTarget, resolveUserId } from './user-target.js';

const USAGE = `
usage: npm run user:disable -- (--id ID | --email E) [--enable] [--url URL]

Disables a user: no login or refresh from now on, and every session of theirs ends at once.
  --id ID     the user's id;  --email E  or their email
  --enable    enable the user again instead
  --url URL   the authority whose admin API to call (default: the dev server, http://127.0.0.1:$PORT);
              credentials from ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET, else (dev) KEYS_DIR/dev-admin-client.json
`;

function options() {
  const values = parseOptions({ id: { type: 'string' }, email: { type: 'string' }, enable: { type: 'boolean', default: false }, url: { type: 'string' } });
  checkUserTarget(values);
  return values;
}

if (!answerHelp(USAGE)) {
  await runScript('user:disable', async (config) => {
    const values = options();
    const api = await connectAdminApi(config, values.url);
    const userId = await resolveUserId(api, values);
    const answer = await api.call('POST', `/admin/users/${encodeURIComponent(userId)}/${values.enable ? 'enable' : 'disable'}`);
    const user = answer.user as { id: string; email: string; disabled: boolean };
    const ended = values.enable ? '' : ` sessions_ended=${String(answer.sessions_ended)}`;
    process.stdout.write(`user_id=${user.id} email=${user.email} disabled=${String(user.disabled)}${ended}\n`);
  });
}
