/**
 * Events of the user service, added around it in compose.ts rather than inside it: login
 * succeeded / failed / throttled, account locked, user registered. Which login budget
 * refused an attempt, or was spent by it, is seen by wrapping the rate-limit backend the
 * login throttle counts in (`trackLoginLimits`): the throttle itself is unchanged.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { InvalidGrantError, InvalidRequestError, TooManyRequestsError } from '../errors.js';
import type { RateLimitBackend, UserRecord } from '../stores/types.js';
import { normaliseEmail } from '../users/email.js';
import type { UserService } from '../users/service.js';
import type { EventData, EventSink, LoginLimit, NewEvent } from './types.js';

/** The login throttle's budget key prefixes (users/login-throttle.ts) → the names events use. */
const LOGIN_LIMITS: readonly (readonly [string, LoginLimit])[] = [
  ['login:account-ip:', 'account_ip'],
  ['login:ip:', 'ip'],
  ['login:account:', 'account'],
];
const limitOf = (key: string): LoginLimit | undefined => LOGIN_LIMITS.find(([prefix]) => key.startsWith(prefix))?.[1];
const limitsOf = (keys: readonly string[]): LoginLimit[] => keys.map(limitOf).filter((name): name is LoginLimit => name !== undefined);

/** What the login budgets answered during one attempt: which were full, which its failure filled. */
interface Attempt {
  refused: LoginLimit[];
  filled: LoginLimit[];
}

export interface LoginLimitTracker {
  /** The backend to give the login throttle: it records each login budget's answer in the attempt in progress. */
  readonly backend: RateLimitBackend;
  /** Runs one attempt, collecting what each login budget answered during it. */
  track<T>(work: () => Promise<T>): { attempt: Attempt; result: Promise<T> };
}

export function trackLoginLimits(backend: RateLimitBackend): LoginLimitTracker {
  const attempts = new AsyncLocalStorage<Attempt>();
  return {
    backend: {
      limiter: (options) => backend.limiter(options),
      attempts() {
        const ledger = backend.attempts();
        return {
          async reserve(id, budgets, holdMs) {
            const reservation = await ledger.reserve(id, budgets, holdMs);
            const attempt = attempts.getStore();
            if (attempt && !reservation.admitted) attempt.refused = limitsOf(reservation.full);
            return reservation;
          },
          async settle(id, budgets, outcome) {
            const filled = await ledger.settle(id, budgets, outcome);
            const attempt = attempts.getStore();
            if (attempt) attempt.filled = limitsOf(filled);
            return filled;
          },
        };
      },
    },
    track(work) {
      const attempt: Attempt = { refused: [], filled: [] };
      return { attempt, result: attempts.run(attempt, work) };
    },
  };
}

const FAILURE_REASONS: Record<string, EventData['login.failed']['reason']> = {
  'unknown email': 'unknown_email',
  'wrong password': 'wrong_password',
  'disabled account': 'disabled_account',
};

/** The user service, emitting its events. */
export function withUserEvents(users: UserService, deps: { events: EventSink; limits: LoginLimitTracker }): UserService {
  const { events, limits } = deps;

  /** A failed attempt that spent the account's last point locked it (LOGIN_ACCOUNT_RATE_LIMIT). */
  function lockedBy(attempt: Attempt, email: string): void {
    if (attempt.filled.includes('account')) {
      events.emit({ type: 'account.locked', actor: { type: 'anonymous' }, subject: { type: 'user', email }, data: { limit: 'account' } });
    }
  }

  function throttled(err: TooManyRequestsError, attempt: Attempt, email: string, actor: { type: 'anonymous' | 'user'; id?: string }): void {
    const limits = attempt.refused;
    events.emit({
      type: 'login.throttled',
      actor,
      subject: { type: 'user', email },
      data: { limits, retry_after_seconds: Number(err.headers['Retry-After'] ?? 0) },
    });
  }

  return {
    ...users,

    async register(input) {
      const user = await users.register(input);
      events.emit({
        type: 'user.registered',
        actor: { type: 'anonymous' },
        subject: { type: 'user', id: user.id, email: user.email },
        data: { user_id: user.id },
      });
      return user;
    },

    async login(input) {
      const email = normaliseEmail(input.email);
      const { attempt, result } = limits.track(() => users.login(input));
      try {
        const user = await result;
        events.emit({
          type: 'login.succeeded',
          actor: { type: 'user', id: user.id },
          subject: { type: 'user', id: user.id, email: user.email },
          data: { user_id: user.id },
        });
        return user;
      } catch (err) {
        if (err instanceof TooManyRequestsError) throttled(err, attempt, email, { type: 'anonymous' });
        if (err instanceof InvalidGrantError) {
          const reason = FAILURE_REASONS[err.detail ?? ''] ?? 'wrong_password';
          events.emit({ type: 'login.failed', actor: { type: 'anonymous' }, subject: { type: 'user', email }, data: { reason } });
          lockedBy(attempt, email);
        }
        throw err;
      }
    },

    /** A wrong current password counts against the same budgets as a login, and can lock the account too. */
    async changePassword(input) {
      const { attempt, result } = limits.track(() => users.changePassword(input));
      try {
        return await result;
      } catch (err) {
        if (err instanceof TooManyRequestsError) throttled(err, attempt, input.user.email, { type: 'user', id: input.user.id });
        // The wrong current password (any other failure came after a right one, which was refunded).
        if (err instanceof InvalidRequestError) lockedBy(attempt, input.user.email);
        throw err;
      }
    },
  };
}

/** The password changed; `sessionsEnded` other sessions ended with it. */
export function passwordChanged(user: Pick<UserRecord, 'id' | 'email'>, sessionsEnded: number): NewEvent {
  return {
    type: 'password.changed',
    actor: { type: 'user', id: user.id },
    subject: { type: 'user', id: user.id, email: user.email },
    data: { user_id: user.id, sessions_ended: sessionsEnded },
  };
}
