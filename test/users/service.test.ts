/**
 * The user service over the real MongoDB store: argon2id parameters from config, and the
 * transparent re-hash at login when they change.
 */
import argon2 from 'argon2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createMemoryRateLimits } from '../../src/stores/memory/rate-limits.js';
import { createMongoConnection, createMongoStores, type MongoConnection } from '../../src/stores/mongo/connection.js';
import { createLoginThrottle } from '../../src/users/login-throttle.js';
import { createPasswordHasher, type Argon2Params } from '../../src/users/passwords.js';
import { createUserService } from '../../src/users/service.js';
import { testDatabaseUri } from '../support/mongo.js';

let connection: MongoConnection;
beforeAll(async () => {
  connection = createMongoConnection(testDatabaseUri(inject('mongoUri'), 'users-service'));
  await connection.init();
});
afterAll(async () => {
  await connection?.close();
});

async function serviceWith(params: Argon2Params) {
  const { users } = createMongoStores(connection);
  const limits = createMemoryRateLimits();
  const budget = { points: 100, durationSec: 60 };
  return {
    users,
    service: createUserService({
      users,
      hasher: await createPasswordHasher(params),
      throttle: createLoginThrottle(limits, { accountIp: budget, ip: budget, account: budget }),
      clock: manualClock(),
      takenEmails: limits.limiter({ keyPrefix: 'taken', ...budget }),
      registrations: limits.limiter({ keyPrefix: 'registrations', ...budget }),
    }),
  };
}

describe('password hashing', () => {
  it('stores argon2id hashes with the configured parameters', async () => {
    const { service, users } = await serviceWith({ memoryCost: 8192, timeCost: 1, parallelism: 1 });
    const user = await service.register({ email: 'Hash@Example.com', password: 'password one', ip: '192.0.2.1' });
    const hash = (await users.getPasswordHash(user.id))!;
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=8192,p=1,t=1\$/);
    expect(await argon2.verify(hash, 'password one')).toBe(true);
  });

  it('re-hashes at login when the parameters have changed, keeping passwordChangedAt', async () => {
    const weak = await serviceWith({ memoryCost: 8192, timeCost: 1, parallelism: 1 });
    const user = await weak.service.register({ email: 'rehash@example.com', password: 'password two', ip: '192.0.2.1' });
    const before = await weak.users.findById(user.id);

    const strong = await serviceWith({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
    await strong.service.login({ email: 'rehash@example.com', password: 'password two', ip: '192.0.2.1' });
    const hash = (await strong.users.getPasswordHash(user.id))!;
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect((await strong.users.findById(user.id))!.passwordChangedAt).toEqual(before!.passwordChangedAt);
    // A failed login never re-hashes.
    await expect(weak.service.login({ email: 'rehash@example.com', password: 'wrong password', ip: '192.0.2.1' })).rejects.toMatchObject({ code: 'invalid_grant' });
    expect(await strong.users.getPasswordHash(user.id)).toBe(hash);
  });

  it('normalises emails (trim, NFKC, lower case) so visually equal addresses are one account', async () => {
    const { service } = await serviceWith({ memoryCost: 8192, timeCost: 1, parallelism: 1 });
    await service.register({ email: ' Ｕｎｉ@Example.COM ', password: 'password three', ip: '192.0.2.1' });
    await expect(service.register({ email: 'uni@example.com', password: 'password three', ip: '192.0.2.1' })).rejects.toMatchObject({ status: 409 });
    await expect(service.login({ email: 'UNI@example.com', password: 'password three', ip: '192.0.2.1' })).resolves.toMatchObject({ email: 'uni@example.com' });
  });
});
