/**
 * The login throttle's judging of concurrent attempts, with in-process counters (the
 * same over Redis, across two instances, is in test/http/throttling.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { TooManyRequestsError } from '../../src/errors.js';
import { StoreUnavailableError } from '../../src/stores/types.js';
import { createMemoryRateLimits } from '../../src/stores/memory/rate-limits.js';
import { createLoginThrottle } from '../../src/users/login-throttle.js';

function throttleOf(points: number) {
  const budget = { points, durationSec: 900 };
  return createLoginThrottle(createMemoryRateLimits(), {
    accountIp: budget,
    ip: { points: 100, durationSec: 900 },
    account: { points: 100, durationSec: 900 },
  });
}

/** A password check that ends when told to, counting how many checks ran. */
function checks() {
  let ran = 0;
  const pending: (() => void)[] = [];
  const check = (right: boolean) => async () => {
    ran += 1;
    await new Promise<void>((resolve) => pending.push(resolve));
    if (!right) throw new Error('wrong password');
    return 'user';
  };
  const settle = async () => {
    // Let the throttle's counters and waiters run (a waiter polls every 25-50 ms), then end every check begun so far.
    for (let round = 0; round < 60; round += 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      pending.splice(0).forEach((resolve) => resolve());
    }
  };
  return { check, settle, ran: () => ran };
}

describe('login throttle, concurrent attempts', () => {
  it('admits right passwords beyond the budget once those in flight are judged right', async () => {
    const throttle = throttleOf(2);
    const { check, settle, ran } = checks();
    const logins = Promise.allSettled(Array.from({ length: 6 }, () => throttle.judge('a@example.com', '192.0.2.1', check(true))));
    await settle();
    expect((await logins).map((result) => result.status)).toEqual(Array<string>(6).fill('fulfilled'));
    expect(ran()).toBe(6);
  });

  it('lets only the budget of concurrent wrong passwords reach the check; the rest wait, then get 429', async () => {
    const throttle = throttleOf(2);
    const { check, settle, ran } = checks();
    const logins = Promise.allSettled(Array.from({ length: 8 }, () => throttle.judge('b@example.com', '192.0.2.1', check(false))));
    await settle();
    const reasons = (await logins).map((result) => (result.status === 'rejected' ? (result.reason as Error) : undefined));
    expect(ran()).toBe(2);
    expect(reasons.filter((reason) => reason instanceof TooManyRequestsError)).toHaveLength(6);
  });

  it('refuses a right password that waited behind wrong ones which spent the budget', async () => {
    const throttle = throttleOf(2);
    const { check, settle, ran } = checks();
    const wrong = [0, 1].map(() => throttle.judge('c@example.com', '192.0.2.1', check(false)).catch((err: unknown) => err));
    const right = throttle.judge('c@example.com', '192.0.2.1', check(true)).catch((err: unknown) => err);
    await settle();
    await Promise.all(wrong);
    expect(await right).toBeInstanceOf(TooManyRequestsError);
    expect(ran()).toBe(2);
  });

  it('an attempt that could not be judged (a store unavailable: 503) leaves no point spent', async () => {
    const throttle = throttleOf(2);
    const unavailable = () =>
      throttle.judge('d@example.com', '192.0.2.1', async () => {
        throw new StoreUnavailableError('users');
      });
    for (let i = 0; i < 5; i += 1) await expect(unavailable()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(throttle.judge('d@example.com', '192.0.2.1', async () => 'user')).resolves.toBe('user');
  });
});
