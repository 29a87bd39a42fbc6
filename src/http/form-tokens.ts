/**
 * CSRF tokens of the account pages' forms: a random value in an HttpOnly cookie of the
 * browser, and in the form an HMAC of it with the form's name and the time. A token is
 * worthless in another browser, for another form, or after `ttlMs` (the login page's
 * transactions work the same way, in oauth/sign-in.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.js';

export function createFormTokens({ key, clock, ttlMs }: { key: Buffer; clock: Clock; ttlMs: number }) {
  const mac = (binding: string, form: string, time: string) => createHmac('sha256', key).update(`${binding}.${form}.${time}`).digest('base64url');
  return {
    issue: (binding: string, form: string): string => {
      const time = String(clock.now());
      return `${time}.${mac(binding, form, time)}`;
    },
    /** True when `token` was issued to this browser (`binding`) for `form` less than `ttlMs` ago. */
    verify(binding: string, form: string, token: string): boolean {
      const [time = '', tag = ''] = token.split('.');
      if (!binding || !/^\d{1,15}$/.test(time)) return false;
      const expected = Buffer.from(mac(binding, form, time));
      const given = Buffer.from(tag);
      return expected.length === given.length && timingSafeEqual(expected, given) && clock.now() - Number(time) < ttlMs;
    },
  };
}

export type FormTokens = ReturnType<typeof createFormTokens>;
