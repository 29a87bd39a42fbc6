/**
 * Users as the API sees them: registration, password login (throttled, no enumeration),
 * password change. Password hashes stay between the store and this module.
 */
import type { Clock } from '../clock.js';
import type { RateBudget } from '../config.js';
import { ConflictError, EmailNotVerifiedError, InvalidGrantError, InvalidRequestError } from '../errors.js';
import { clientNetwork } from '../net.js';
import { withTimeout } from '../stores/deadline.js';
import { DuplicateKeyError, type UserRecord, type UserStore } from '../stores/types.js';
import { budgetOf, type AttemptGuard } from './budgets.js';
import { normaliseEmail } from './email.js';
import type { LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './passwords.js';

const BAD_CREDENTIALS = 'invalid email or password';
const WRONG_CURRENT_PASSWORD = 'current_password is wrong';

interface PasswordChange {
  readonly user: UserRecord;
  readonly currentPassword: string;
  readonly newPassword: string;
  readonly ip: string;
  /** The caller's session (the access token's `sid`, else its `jti`), recorded with the change. */
  readonly session: string;
}

type StoredPassword = { readonly outcome: 'current'; readonly hash: string } | { readonly outcome: 'repeat' } | { readonly outcome: 'wrong' };

export function createUserService(deps: {
  users: Pick<UserStore, 'create' | 'findById' | 'findCredentials' | 'getPasswordHash' | 'setPasswordHash' | 'recordSignOut'>;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  clock: Clock;
  /** Spends the registration budgets (the attempts ledger). */
  budgets: AttemptGuard;
  /** Registrations of taken emails per network: probing which addresses have accounts is slowed. */
  takenEmails: RateBudget;
  /** Every registration per network: each costs an argon2 hash and a stored user. */
  registrations: RateBudget;
  /** REQUIRE_VERIFIED_EMAIL: a right password to an unverified account is refused (EmailNotVerifiedError). */
  requireVerifiedEmail?: boolean;
  /** Why a new password is refused (blocklist, breach check) at registration and change; undefined when it is not. */
  refusePassword?: (password: string, email: string) => Promise<string | undefined>;
  /**
   * How long a login waits for the user lookup before answering 503 (ms; undefined: as long
   * as the store's own timeouts, which with retries and server selection add up to 20 s).
   */
  lookupTimeoutMs?: number;
}) {
  const { users, hasher, throttle, clock } = deps;

  /**
   * What the stored hash says about a password change: it matches `currentPassword`
   * (`current`), or it is `newPassword` put there by this session within
   * PASSWORD_RETRY_WINDOW_MS (`repeat`), or neither (`wrong`). `changer` gives the user
   * record to read who made the last change from.
   */
  async function checkStoredPassword(input: PasswordChange, changer: () => Promise<UserRecord | null>): Promise<StoredPassword> {
    const hash = await users.getPasswordHash(input.user.id);
    if (hash === null) throw new InvalidRequestError(WRONG_CURRENT_PASSWORD);
    if ((await hasher.verify(hash, input.currentPassword)).ok) return { outcome: 'current', hash };
    const latest = await changer();
    const repeat =
      latest?.passwordChangedBy === input.session &&
      clock.now() - latest.passwordChangedAt.getTime() < PASSWORD_RETRY_WINDOW_MS &&
      (await hasher.verify(hash, input.newPassword)).ok;
    return repeat ? { outcome: 'repeat' } : { outcome: 'wrong' };
  }

  /** Writes `newHash` only if `expected` is still stored; false when another write came first. */
  async function replaceHash(input: PasswordChange, expected: string, newHash: string): Promise<boolean> {
    const change = { at: new Date(clock.now()), by: input.session };
    return users.setPasswordHash(input.user.id, newHash, { expected, change });
  }

  return {
    async register(input: { email: string; password: string; name?: string | undefined; ip: string }): Promise<UserRecord> {
      const email = normaliseEmail(input.email);
      // Counted per IPv4 address or IPv6 /64, like logins: any host can rotate through its /64.
      const network = clientNetwork(input.ip);
      // Both budgets are spent before the argon2 hash and the lookup. A free email gives
      // back the taken-email point; a request answered 503 gives back both.
      const perNetwork = budgetOf(`register:ip:${network}`, deps.registrations);
      const taken = budgetOf(`register:taken:${network}`, deps.takenEmails);
      return deps.budgets.spend([perNetwork, taken], 'too many registration attempts, try again later', async () => {
        const refused = await deps.refusePassword?.(input.password, email);
        if (refused) throw new InvalidRequestError(`password: ${refused}`);
        const passwordHash = await hasher.hash(input.password);
        try {
          return { value: await users.create({ email, name: input.name, passwordHash, roles: [] }), giveBack: [taken] };
        } catch (err) {
          if (err instanceof DuplicateKeyError) throw new ConflictError('an account with this email already exists');
          throw err;
        }
      });
    },

    /**
     * The user whose email and password match. Unknown emails, wrong passwords and
     * disabled accounts give the same error after the same argon2 work.
     */
    async login(input: { email: string; password: string; ip: string }): Promise<UserRecord> {
      const email = normaliseEmail(input.email);
      const user = await throttle.judge(email, input.ip, async () => {
        const credentials = await withTimeout(users.findCredentials(email), deps.lookupTimeoutMs, 'users');
        const user = credentials?.user;
        let ok = false;
        if (credentials) {
          const result = await hasher.verify(credentials.passwordHash, input.password);
          ok = result.ok;
          // Conditional on the hash just verified: a password change that lands while this
          // re-hash runs wins, rather than being overwritten by a hash of the old password.
          if (ok && result.needsRehash)
            await users.setPasswordHash(credentials.user.id, await hasher.hash(input.password), { expected: credentials.passwordHash });
        } else {
          await hasher.verifyDummy(input.password);
        }
        if (!user || !ok || user.disabled) {
          throw new InvalidGrantError(BAD_CREDENTIALS, { detail: !user ? 'unknown email' : user.disabled ? 'disabled account' : 'wrong password' });
        }
        return user;
      });
      // Only now, with the password checked: the refusal tells nothing to someone without it.
      if (deps.requireVerifiedEmail && !user.emailVerified) throw new EmailNotVerifiedError(undefined, { detail: 'unverified email' });
      return user;
    },

    /**
     * Changes the password after checking the current one, throttled like a login (a
     * stolen access token must not become an oracle for the password). `session` names the
     * caller's session (the access token's `sid`, else its `jti`) and is recorded with the
     * change.
     *
     * A repeat of a change that went through (a retry after a lost reply or a failure to
     * end the other sessions, or a double submit) finds `new_password` already in place,
     * and succeeds: only from the session that made the change and within
     * PASSWORD_RETRY_WINDOW_MS of it, or each attempt with a stolen token would test two
     * guesses.
     */
    async changePassword(input: PasswordChange): Promise<void> {
      const { user } = input;
      // The policy is public: a refused new password is no failed attempt at the current one.
      const refused = await deps.refusePassword?.(input.newPassword, user.email);
      if (refused) throw new InvalidRequestError(`new_password: ${refused}`);
      // The first check reads who changed the password last from the user as this request
      // found it; a second one lost a race, perhaps to its own double, and reads it afresh.
      const first = await throttle.judge(user.email, input.ip, async () => {
        const found = await checkStoredPassword(input, async () => user);
        if (found.outcome === 'wrong') throw new InvalidRequestError(WRONG_CURRENT_PASSWORD);
        return found;
      });
      if (first.outcome === 'repeat') return;
      const newHash = await hasher.hash(input.newPassword);
      if (await replaceHash(input, first.hash, newHash)) return;
      // The hash moved meanwhile. A login re-hashing the same password moves it without
      // changing the password: check once more. Another change in between is a conflict,
      // unless it was this request's own double.
      const second = await checkStoredPassword(input, () => users.findById(user.id));
      if (second.outcome === 'repeat') return;
      if (second.outcome === 'current' && (await replaceHash(input, second.hash, newHash))) return;
      throw new ConflictError('the password was changed by another request meanwhile; this one changed nothing');
    },

    findById: (id: string) => users.findById(id),

    /** A logout-all is starting: logins in flight will see it (UserRecord.signOuts). */
    recordSignOut: (id: string) => users.recordSignOut(id),
  };
}

export type UserService = ReturnType<typeof createUserService>;

/** How long after a password change its session may repeat it (a retry, a double submit). */
export const PASSWORD_RETRY_WINDOW_MS = 10 * 60_000;

/** The user as the API shows it: never the hash. */
export function publicUser(user: UserRecord) {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    name: user.name ?? null,
    roles: [...user.roles],
    created_at: user.createdAt.toISOString(),
  };
}
