/**
 * Request-body validation. Every body goes through a zod schema; a problem becomes a 400
 * in the documented format whose description names the field. Unknown parameters are
 * ignored (RFC 6749 §3.1), never copied anywhere.
 */
import { z } from 'zod';
import { InvalidRequestError, type OAuthError } from './errors.js';
import { looksLikeEmail, normaliseEmail } from './users/email.js';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './users/passwords.js';

/** A non-empty string of at most `max` characters with no NUL (never valid in any field we take). */
export const text = (max: number) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((value) => !value.includes('\u0000'), 'must not contain NUL characters');

/**
 * Checked as it will be stored (normaliseEmail): NFKC can make one character many (U+FDFA
 * becomes 18), so a length checked before normalising bounds nothing.
 */
export const email = text(254)
  .refine((value) => looksLikeEmail(normaliseEmail(value)), 'must be an email address')
  .refine((value) => normaliseEmail(value).length <= 254, 'must be at most 254 characters');
/**
 * At login the address is only looked up, so it is checked as sent, as it always was: an
 * account stored before new addresses were checked in normalised form must still sign in.
 */
export const loginEmail = text(254)
  .refine((value) => looksLikeEmail(value.trim()), 'must be an email address')
  .refine((value) => normaliseEmail(value).length <= 254, 'must be at most 254 characters');
export const newPassword = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
  .min(PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
  .max(PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`)
  .refine((value) => !value.includes('\u0000'), 'must not contain NUL characters');
/** At login any length up to the maximum is checked, so the policy is not revealed by a 400. */
export const password = text(PASSWORD_MAX_LENGTH);

/**
 * Parses `body` with `schema`; on failure throws `makeError(description)` (default
 * invalid_request) naming the first bad field.
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  body: unknown,
  makeError: (description: string) => OAuthError = (description) => new InvalidRequestError(description),
): z.output<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join('.').slice(0, 64);
  throw makeError(field ? `${field}: ${issue.message}` : issue.message);
}
