/**
 * What a new password may not be (NIST SP 800-63B §3.1.1.2, "Password Verifiers"): a value
 * from a list of commonly used or breached passwords, or one holding a context word (the
 * local part of the account's address). The list is `passwords-common` of
 * @zxcvbn-ts/language-common (about 49,000 entries from public password leaks, the zxcvbn
 * project's frequency lists), compared lower-cased. Optionally (HIBP_RANGE_URL) a password is
 * also checked against a Have I Been Pwned range API by k-anonymity: only the first five hex
 * characters of its SHA-1 leave the process; when that API fails the check is skipped with a
 * log line (fail open: an outage there must not stop every sign-up and reset).
 */
import { createHash } from 'node:crypto';
import { dictionary } from '@zxcvbn-ts/language-common';
import type { Logger } from '../log.js';

export interface PasswordPolicyOptions {
  /** The range API's base, to which the 5-character prefix is appended (`https://api.pwnedpasswords.com/range/`). */
  readonly hibpRangeUrl?: string | undefined;
  readonly logger: Logger;
  /** ms the range API may take. */
  readonly hibpTimeoutMs?: number;
  readonly fetch?: typeof fetch;
}

/** A context word shorter than this is not refused inside a password ("al" would refuse half of them). */
const MIN_CONTEXT_WORD = 3;

export function createPasswordPolicy(options: PasswordPolicyOptions) {
  const common = new Set(dictionary['passwords-common']);
  const fetchImpl = options.fetch ?? fetch;
  const timeoutMs = options.hibpTimeoutMs ?? 2000;
  const rangeBase = options.hibpRangeUrl && !options.hibpRangeUrl.endsWith('/') ? `${options.hibpRangeUrl}/` : options.hibpRangeUrl;

  /** How often the range API has seen the password; undefined when it could not be asked. */
  async function breachCount(password: string): Promise<number | undefined> {
    if (!rangeBase) return 0;
    const sha1 = createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();
    const prefix = sha1.slice(0, 5);
    const suffix = sha1.slice(5);
    try {
      const response = await fetchImpl(`${rangeBase}${prefix}`, {
        headers: { 'Add-Padding': 'true', 'User-Agent': 'token-authority' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      for (const line of (await response.text()).split('\n')) {
        const [candidate = '', count = '0'] = line.trim().split(':');
        if (candidate.toUpperCase() === suffix) return Number(count) || 0;
      }
      return 0;
    } catch (err) {
      options.logger.warn(
        { reason: err instanceof Error ? err.message : String(err) },
        'password policy: the breach range API did not answer; password allowed without that check',
      );
      return undefined;
    }
  }

  return {
    /** Why `password` may not be the new password of the account with `email`, or undefined when it may. */
    async refuse(password: string, email: string): Promise<string | undefined> {
      const lowered = password.toLowerCase();
      if (common.has(lowered)) return 'is too common: it appears in lists of leaked passwords';
      const local = email.split('@')[0]?.toLowerCase() ?? '';
      if (local.length >= MIN_CONTEXT_WORD && lowered.includes(local)) return 'must not contain your email address';
      if (((await breachCount(password)) ?? 0) > 0) return 'has appeared in a data breach: choose another one';
      return undefined;
    },
  };
}

export type PasswordPolicy = ReturnType<typeof createPasswordPolicy>;
