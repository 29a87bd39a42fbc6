/**
 * Users as the API sees them: registration, password login (throttled, no enumeration),
 * password change. Password hashes stay between the store and this module.
 */
import type { Clock } from '../clock.js';
import { ConflictError, InvalidGrantError, InvalidRequestError, TooManyRequestsError } from '../errors.js';
import { DuplicateKeyError, type RateLimiter, type UserRecord, type UserStore } from '../stores/types.js';
import { normaliseEmail } from './email.js';
import type { LoginThrottle } from './login-throttle.js';
import type { PasswordHasher } from './passwords.js';

const BAD_CREDENTIALS = 'invalid email or password';

export function createUserService(deps: {
  users: Pick<UserStore, 'create' | 'findById' | 'findByEmail' | 'getPasswordHash' | 'setPasswordHash'>;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  clock: Clock;
  /** Registrations of taken emails per IP: probing which addresses have accounts is slowed. */
  takenEmails: RateLimiter;
}) {
  const { users, hasher, throttle, clock, takenEmails } = deps;

  return {
    async register(input: { email: string; password: string; name?: string | undefined; ip: string }): Promise<UserRecord> {
      const email = normaliseEmail(input.email);
      const budget = await takenEmails.peek(input.ip);
      if (!budget.allowed) throw new TooManyRequestsError(budget.retryAfterMs / 1000, 'too many registration attempts, try again later');
      const passwordHash = await hasher.hash(input.password);
      try {
        return await users.create({ email, name: input.name, passwordHash, roles: [] });
      } catch (err) {
        if (err instanceof DuplicateKeyError) {
          await takenEmails.consume(input.ip);
          throw new ConflictError('an account with this email already exists');
        }
        throw err;
      }
    },

    /**
     * The user whose email and password match. Unknown emails, wrong passwords and
     * disabled accounts give the same error after the same argon2 work.
     */
    async login(input: { email: string; password: string; ip: string }): Promise<UserRecord> {
      const email = normaliseEmail(input.email);
      await throttle.check(email, input.ip);
      const user = await users.findByEmail(email);
      const hash = user ? await users.getPasswordHash(user.id) : null;
      let ok = false;
      if (hash) {
        const result = await hasher.verify(hash, input.password);
        ok = result.ok;
        if (ok && result.needsRehash && user) await users.setPasswordHash(user.id, await hasher.hash(input.password));
      } else {
        await hasher.verifyDummy(input.password);
      }
      if (!user || !ok || user.disabled) {
        await throttle.recordFailure(email, input.ip);
        throw new InvalidGrantError(BAD_CREDENTIALS, { detail: !user ? 'unknown email' : user.disabled ? 'disabled account' : 'wrong password' });
      }
      await throttle.recordSuccess(email, input.ip);
      return user;
    },

    async changePassword(userId: string, currentPassword: string, newPassword: string): Promise<void> {
      const hash = await users.getPasswordHash(userId);
      if (!hash || !(await hasher.verify(hash, currentPassword)).ok) {
        throw new InvalidRequestError('current_password is wrong');
      }
      await users.setPasswordHash(userId, await hasher.hash(newPassword), new Date(clock.now()));
    },

    findById: (id: string) => users.findById(id),
  };
}

export type UserService = ReturnType<typeof createUserService>;

/** The user as the API shows it: never the hash. */
export function publicUser(user: UserRecord) {
  return {
    id: user.id,
    email: user.email,
    name: user.name ?? null,
    roles: [...user.roles],
    created_at: user.createdAt.toISOString(),
  };
}
