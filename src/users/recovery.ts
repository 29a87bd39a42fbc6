/**
 * Account recovery and verification: the mailed-link flows. Email verification (at
 * registration and on request), password reset (forgot → link → new password), and email
 * change (asked with the current password, done when the new address confirms).
 *
 * Requests that name an address (forgot, resend) answer the same whether or not it has an
 * account: what differs — the lookup, the token, the mail — runs after the answer, off the
 * request path (`background`), so neither the body nor the time tells. They are throttled
 * per address and per IP (IPv6 /64) before anything else, given back only when the request
 * is answered 503 (a store unavailable).
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import { ConflictError, InvalidGrantError, InvalidRequestError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MailOutbox } from '../mail/outbox.js';
import { lifetimeText } from '../mail/templates.js';
import { clientNetwork } from '../net.js';
import type { RateBudget } from '../config.js';
import { DuplicateKeyError, type UserRecord, type UserStore } from '../stores/types.js';
import type { AccountTokenPurpose, AccountTokens, OpenedToken } from './account-tokens.js';
import { normaliseEmail } from './email.js';
import { budgetOf, type AttemptGuard } from './budgets.js';
import type { LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './passwords.js';

export const EMAIL_VERIFY_TTL_MS = 24 * 3600_000;
export const PASSWORD_RESET_TTL_MS = 30 * 60_000;
export const EMAIL_CHANGE_TTL_MS = 24 * 3600_000;

/** How long after the answer the work of a request that names an address starts. */
const AFTER_ANSWER_MS = 10;

const BAD_LINK = 'this link is invalid, has expired, or was already used';
const WRONG_CURRENT_PASSWORD = 'current_password is wrong';

/** Where the mailed links point: the hosted pages, given the token. */
export interface AccountLinks {
  verifyEmail(token: string): string;
  resetPassword(token: string): string;
  confirmEmailChange(token: string): string;
}

export interface RecoveryDeps {
  readonly users: Pick<UserStore, 'findById' | 'findByEmail' | 'getPasswordHash' | 'setPasswordHash' | 'markEmailVerified' | 'changeEmail'>;
  readonly hasher: PasswordHasher;
  readonly tokens: AccountTokens;
  readonly mail: Pick<MailOutbox, 'send'>;
  readonly links: AccountLinks;
  /** Why a new password is refused (blocklist, breach check); undefined when it is not. */
  readonly refusePassword: (password: string, email: string) => Promise<string | undefined>;
  /** Ends every refresh family and sign-in session of the user; resolves how many families ended. */
  readonly endSessions: (userId: string) => Promise<number>;
  /** The current password of an email change is checked like a login (a stolen access token is no password oracle). */
  readonly throttle: Pick<LoginThrottle, 'judge'>;
  /** Mail-sending requests per address (hashed) and per IP network, spent on the attempts ledger. */
  readonly budgets: AttemptGuard;
  readonly perAddress: RateBudget;
  readonly perNetwork: RateBudget;
  readonly clock: Clock;
  readonly logger: Logger;
}

export function createAccountRecovery(deps: RecoveryDeps) {
  const { users, tokens, mail, links, logger } = deps;
  const pending = new Set<Promise<void>>();

  /**
   * Runs `work` after the answer has gone out; a failure is logged (never thrown at a caller
   * who must not learn of it). Not on a microtask: with stores that answer at once, the work
   * would run before the response is written and show in its timing (the timing test saw it).
   */
  function background(what: string, work: () => Promise<void>): void {
    const task = new Promise<void>((resolve) => setTimeout(resolve, AFTER_ANSWER_MS))
      .then(work)
      .catch((err: unknown) => logger.warn({ err, what }, 'account mail: background step failed'))
      .finally(() => pending.delete(task));
    pending.add(task);
  }

  async function throttle(email: string, ip: string): Promise<void> {
    const address = createHash('sha256').update(email).digest('base64url').slice(0, 22);
    // Every request counts, whatever the address; one answered 503 (Redis stalled) costs nothing.
    const budgets = [budgetOf(`mail:address:${address}`, deps.perAddress), budgetOf(`mail:ip:${clientNetwork(ip)}`, deps.perNetwork)];
    await deps.budgets.spend(budgets, 'too many requests for mail, try again later', async () => ({ value: undefined }));
  }

  /** A token of `purpose` opened and used up, with its user as found now; InvalidGrantError for anything else. */
  async function redeem(purpose: AccountTokenPurpose, token: string) {
    const opened = await tokens.open(purpose, token);
    const user = opened ? await users.findById(opened.userId) : null;
    if (!opened || !user || user.disabled || !stillBound[purpose](user, opened)) throw new InvalidGrantError(BAD_LINK);
    return { opened, user };
  }

  const emailChangeOf = (binding: string) => JSON.parse(binding) as { from: string; to: string };
  /** What each kind of token must still match in the user as found now. */
  const stillBound: Record<AccountTokenPurpose, (user: UserRecord, opened: OpenedToken) => boolean> = {
    'email-verify': (user, { binding }) => user.email === binding,
    'password-reset': (user, { binding }) => String(user.passwordChangedAt.getTime()) === binding,
    'email-change': (user, { binding }) => user.email === emailChangeOf(binding).from,
  };

  async function sendVerification(user: UserRecord): Promise<void> {
    const token = await tokens.issue('email-verify', user.id, user.email, EMAIL_VERIFY_TTL_MS);
    await mail.send('verify-email', user.email, { link: links.verifyEmail(token), expiresIn: lifetimeText(EMAIL_VERIFY_TTL_MS) });
  }

  return {
    /** At registration: the first verification mail, after the answer. */
    welcome(user: UserRecord): void {
      background('verification mail', () => sendVerification(user));
    },

    /** POST /auth/email/verify/resend: a new link if the address has an unverified account; the same answer either way. */
    async resendVerification(input: { email: string; ip: string }): Promise<void> {
      const email = normaliseEmail(input.email);
      await throttle(email, input.ip);
      background('verification mail', async () => {
        const user = await users.findByEmail(email);
        if (user && !user.disabled && !user.emailVerified) await sendVerification(user);
      });
    },

    /** Confirms the address a verification link was sent to, if it is still the account's. */
    async verifyEmail(token: string): Promise<UserRecord> {
      const { opened, user } = await redeem('email-verify', token);
      if (!(await tokens.take('email-verify', opened)) || !(await users.markEmailVerified(user.id, opened.binding))) throw new InvalidGrantError(BAD_LINK);
      return { ...user, emailVerified: true };
    },

    /** POST /auth/password/forgot: a reset link if the address has an account; the same answer, after the same work, either way. */
    async forgotPassword(input: { email: string; ip: string }): Promise<void> {
      const email = normaliseEmail(input.email);
      await throttle(email, input.ip);
      background('password reset mail', async () => {
        const user = await users.findByEmail(email);
        if (!user || user.disabled) return;
        const token = await tokens.issue('password-reset', user.id, String(user.passwordChangedAt.getTime()), PASSWORD_RESET_TTL_MS);
        await mail.send('password-reset', user.email, { link: links.resetPassword(token), expiresIn: lifetimeText(PASSWORD_RESET_TTL_MS) });
      });
    },

    /**
     * Sets a new password from a reset link. The token is bound to the password version it
     * was issued for (`passwordChangedAt`): any later change kills it. Every session ends;
     * the owner is told by mail. Resolves how many refresh families ended.
     */
    async resetPassword(input: { token: string; newPassword: string }): Promise<number> {
      const { opened, user } = await redeem('password-reset', input.token);
      // Checked before the token is used up: a refused password leaves the link working.
      const refused = await deps.refusePassword(input.newPassword, user.email);
      if (refused) throw new InvalidRequestError(`new_password: ${refused}`);
      const current = await users.getPasswordHash(user.id);
      if (current === null || !(await tokens.take('password-reset', opened))) throw new InvalidGrantError(BAD_LINK);
      const hash = await deps.hasher.hash(input.newPassword);
      const change = { at: new Date(deps.clock.now()), by: 'password-reset' };
      if (!(await users.setPasswordHash(user.id, hash, { expected: current, change }))) {
        throw new ConflictError('the password was changed by another request meanwhile; this one changed nothing');
      }
      const ended = await deps.endSessions(user.id);
      background('password changed notice', () => mail.send('password-changed', user.email, {}));
      return ended;
    },

    /** After any password change (POST /auth/password too): the owner is told by mail. */
    passwordChanged(user: UserRecord): void {
      background('password changed notice', () => mail.send('password-changed', user.email, {}));
    },

    /**
     * POST /auth/email: checks the current password (throttled like a login), then mails a
     * confirmation link to the new address and a notice to the old one. An address that has
     * an account gets the same answer, and no link (only the notice goes out).
     */
    async requestEmailChange(input: { user: UserRecord; currentPassword: string; newEmail: string; ip: string }): Promise<void> {
      const { user } = input;
      const to = normaliseEmail(input.newEmail);
      if (to === user.email) throw new InvalidRequestError('new_email is already the address of this account');
      await deps.throttle.judge(user.email, input.ip, async () => {
        const hash = await users.getPasswordHash(user.id);
        if (hash === null || !(await deps.hasher.verify(hash, input.currentPassword)).ok) throw new InvalidRequestError(WRONG_CURRENT_PASSWORD);
      });
      await throttle(to, input.ip);
      background('email change mails', async () => {
        const taken = (await users.findByEmail(to)) !== null;
        if (!taken) {
          const token = await tokens.issue('email-change', user.id, JSON.stringify({ from: user.email, to }), EMAIL_CHANGE_TTL_MS);
          await mail.send('email-change-confirm', to, { link: links.confirmEmailChange(token), expiresIn: lifetimeText(EMAIL_CHANGE_TTL_MS) });
        }
        await mail.send('email-change-notice', user.email, {});
      });
    },

    /** The new address confirmed: the change is made, if the account still has the old one. */
    async confirmEmailChange(token: string): Promise<UserRecord> {
      const { opened, user } = await redeem('email-change', token);
      const { from, to } = emailChangeOf(opened.binding);
      if (!(await tokens.take('email-change', opened))) throw new InvalidGrantError(BAD_LINK);
      try {
        if (!(await users.changeEmail(user.id, from, to))) throw new InvalidGrantError(BAD_LINK);
      } catch (err) {
        if (err instanceof DuplicateKeyError) throw new ConflictError('another account has taken this address meanwhile');
        throw err;
      }
      return { ...user, email: to, emailVerified: true };
    },

    /**
     * Whether a link would work now, without using it up (the page shows its form, or says
     * the link is dead): the account's address when it would, else null.
     */
    async peek(purpose: AccountTokenPurpose, token: string): Promise<string | null> {
      try {
        return (await redeem(purpose, token)).user.email;
      } catch (err) {
        if (err instanceof InvalidGrantError) return null;
        throw err;
      }
    },

    /** Resolves when every background step started so far has finished (tests, shutdown). */
    async settled(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}

export type AccountRecovery = ReturnType<typeof createAccountRecovery>;
