/** How the user scripts name a user: `--id ID`, or `--email E`, looked up through the admin API (exact match). */
import { ApiError, type AdminApi } from './admin-api.js';
import { UsageError } from './admin-store.js';

export function checkUserTarget(values: { id?: string | undefined; email?: string | undefined }): void {
  if ((values.id === undefined) === (values.email === undefined)) throw new UsageError('name the user with exactly one of --id and --email');
}

export async function resolveUserId(api: AdminApi, values: { id?: string | undefined; email?: string | undefined }): Promise<string> {
  if (values.id !== undefined) return values.id;
  const email = values.email!.trim().toLowerCase();
  const page = await api.call('GET', `/admin/users?email_prefix=${encodeURIComponent(email)}&limit=200`);
  const user = (page.users as { id: string; email: string }[]).find((candidate) => candidate.email === email);
  if (!user) throw new ApiError(`no user with email ${email}`);
  return user.id;
}
