/**
 * RFC 8707 resource indicators, and `audience` (the name some clients use for the same):
 * which one resource the access token is for. `resource` may be sent several times (§2);
 * an access token here has one audience, so more than one distinct value, or a `resource`
 * and an `audience` that differ, is `invalid_target` rather than a silent pick.
 */
import { z } from 'zod';
import { InvalidTargetError } from '../../errors.js';
import { text } from '../../input.js';

const MAX_RESOURCES = 10;

export const targetParameters = {
  audience: text(500).optional(),
  resource: z.union([text(500), z.array(text(500)).max(MAX_RESOURCES, `at most ${MAX_RESOURCES} values`)]).optional(),
};

/** The one audience asked for, if any. */
export function requestedAudience(params: { audience?: string | undefined; resource?: string | readonly string[] | undefined }): string | undefined {
  const values = new Set<string>(typeof params.resource === 'string' ? [params.resource] : (params.resource ?? []));
  if (params.audience !== undefined) values.add(params.audience);
  if (values.size > 1) throw new InvalidTargetError('an access token is for one resource: send one resource (or audience) value');
  return values.values().next().value;
}

/**
 * The audience a client gets: the one it asked for if it is among its audiences (or is the
 * default), the default `AUDIENCE` when it asked for none; anything else is invalid_target.
 */
export function resolveAudience(allowed: readonly string[], requested: string | undefined, defaultAudience: string): string {
  if (requested === undefined || requested === defaultAudience) return defaultAudience;
  if (allowed.includes(requested)) return requested;
  throw new InvalidTargetError(`audience "${requested.slice(0, 100)}" is not allowed for this client`);
}
