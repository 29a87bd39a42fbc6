/**
 * The UserStore contract (src/stores/types.ts), run against every adapter: the in-memory
 * one and MongoDB (whatever backend the run uses: a real server, mongodb-memory-server or
 * the emulator).
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import mongoose from 'mongoose';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { createMemoryUserStore } from '../../src/stores/memory/users.js';
import { createMongoConnection, createMongoStores } from '../../src/stores/mongo/connection.js';
import { isUnavailable } from '../../src/stores/mongo/errors.js';
import { DuplicateKeyError, StoreUnavailableError, type UserStore } from '../../src/stores/types.js';
import { startMongoEmulator } from '../support/mongo-emulator/index.js';
import { freePort } from '../support/processes.js';
import { openTestMongoStores, testDatabaseUri } from '../support/mongo.js';

type ManualClock = ReturnType<typeof manualClock>;

interface Harness {
  readonly store: UserStore;
  /** Releases what the harness holds (connections, databases). */
  close(): Promise<void>;
}

/** Builds a fresh, empty store reading time from `clock`. */
type MakeUserStore = (clock: ManualClock) => Promise<Harness>;

const HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo';

function describeUserStoreContract(name: string, makeStore: MakeUserStore): void {
  describe(`UserStore contract: ${name}`, () => {
    let clock: ManualClock;
    let harness: Harness;
    let store: UserStore;

    beforeEach(async () => {
      clock = manualClock(Date.UTC(2026, 2, 1, 12, 0, 0));
      harness = await makeStore(clock);
      store = harness.store;
    });
    afterEach(async () => {
      await harness.close();
    });

    it('creates a user and finds it again by id and by email', async () => {
      const created = await store.create({ email: 'ada@example.com', name: 'Ada', passwordHash: HASH, roles: ['admin', 'user'] });
      const now = new Date(clock.now());
      expect(created).toEqual({
        id: expect.any(String),
        email: 'ada@example.com',
        name: 'Ada',
        roles: ['admin', 'user'],
        disabled: false,
        emailVerified: false,
        passwordChangedAt: now,
        signOuts: 0,
        createdAt: now,
        updatedAt: now,
      });
      expect(await store.findById(created.id)).toEqual(created);
      expect(await store.findByEmail('ada@example.com')).toEqual(created);
      expect(await store.findByEmail('nobody@example.com')).toBeNull();
    });

    it('counts sign-outs everywhere atomically, and ignores an unknown id (issue 23 item 11)', async () => {
      const created = await store.create({ email: 'signouts@example.com', passwordHash: HASH });
      await Promise.all([store.recordSignOut(created.id), store.recordSignOut(created.id), store.recordSignOut(created.id)]);
      expect((await store.findById(created.id))?.signOuts).toBe(3);
      expect((await store.findCredentials('signouts@example.com'))?.user.signOuts).toBe(3);
      await expect(store.recordSignOut('0123456789abcdef01234567')).resolves.toBeUndefined();
      await expect(store.recordSignOut('not an id')).resolves.toBeUndefined();
    });

    it('defaults roles to none and leaves the name undefined', async () => {
      const created = await store.create({ email: 'plain@example.com', passwordHash: HASH });
      expect(created.roles).toEqual([]);
      expect(created.name).toBeUndefined();
      const found = await store.findById(created.id);
      expect(found?.roles).toEqual([]);
      expect(found?.name).toBeUndefined();
    });

    it('updates roles, disabled and name, and deletes; an unknown id changes nothing', async () => {
      const created = await store.create({ email: 'upd@example.com', name: 'Up', passwordHash: HASH, roles: ['user'] });
      clock.advance(1000);
      const updated = await store.update(created.id, { roles: ['user', 'auditor'], disabled: true });
      expect(updated).toEqual({ ...created, roles: ['user', 'auditor'], disabled: true, updatedAt: new Date(clock.now()) });
      expect(await store.findById(created.id)).toEqual(updated);
      expect((await store.update(created.id, { name: 'Renamed' }))?.name).toBe('Renamed');
      expect(await store.update('0123456789abcdef01234567', { disabled: true })).toBeNull();
      expect(await store.delete(created.id)).toBe(true);
      expect(await store.findById(created.id)).toBeNull();
      expect(await store.findByEmail('upd@example.com')).toBeNull();
      expect(await store.delete(created.id)).toBe(false);
    });

    it('gives distinct ids to distinct users', async () => {
      const a = await store.create({ email: 'a@example.com', passwordHash: HASH });
      const b = await store.create({ email: 'b@example.com', passwordHash: HASH });
      expect(a.id).not.toBe(b.id);
      expect((await store.findById(b.id))?.email).toBe('b@example.com');
    });

    it('never puts the password hash in a record; only getPasswordHash returns it', async () => {
      const created = await store.create({ email: 'secret@example.com', passwordHash: HASH });
      for (const record of [created, await store.findById(created.id), await store.findByEmail('secret@example.com')]) {
        expect(record).not.toBeNull();
        expect(Object.keys(record ?? {})).not.toContain('passwordHash');
        expect(JSON.stringify(record)).not.toContain(HASH);
      }
      expect(await store.getPasswordHash(created.id)).toBe(HASH);
    });

    it('finds a user and their hash together by email, for login, and null for an unknown email', async () => {
      const created = await store.create({ email: 'creds@example.com', passwordHash: HASH, roles: ['ops'] });
      expect(await store.findCredentials('creds@example.com')).toEqual({ user: created, passwordHash: HASH });
      expect(await store.findCredentials('nobody@example.com')).toBeNull();
      expect(Object.keys((await store.findCredentials('creds@example.com'))!.user)).not.toContain('passwordHash');
    });

    it('rejects a taken email with DuplicateKeyError and keeps the first user intact', async () => {
      const first = await store.create({ email: 'taken@example.com', name: 'First', passwordHash: HASH });
      const error = await store.create({ email: 'taken@example.com', name: 'Second', passwordHash: 'other' }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(DuplicateKeyError);
      expect((error as DuplicateKeyError).field).toBe('email');
      expect(await store.findByEmail('taken@example.com')).toEqual(first);
      expect(await store.getPasswordHash(first.id)).toBe(HASH);
    });

    it('lets exactly one of 20 concurrent creates of one email succeed', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => store.create({ email: 'race@example.com', name: `racer ${i}`, passwordHash: `${HASH}${i}` })),
      );
      const winners = results.filter((result) => result.status === 'fulfilled');
      const losers = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(19);
      for (const loser of losers) expect(loser.reason).toBeInstanceOf(DuplicateKeyError);
      const stored = await store.findByEmail('race@example.com');
      expect(stored).toEqual((winners[0] as PromiseFulfilledResult<unknown>).value);
    });

    it('replaces the hash; moves passwordChangedAt only when a change time is given', async () => {
      const created = await store.create({ email: 'change@example.com', passwordHash: HASH });

      clock.advance(60_000);
      expect(await store.setPasswordHash(created.id, 'rehashed', { expected: HASH })).toBe(true);
      const rehashed = await store.findById(created.id);
      expect(await store.getPasswordHash(created.id)).toBe('rehashed');
      expect(rehashed?.passwordChangedAt).toEqual(created.passwordChangedAt);
      expect(rehashed?.updatedAt).toEqual(new Date(clock.now()));

      clock.advance(60_000);
      const changedAt = new Date(clock.now());
      expect(rehashed?.passwordChangedBy).toBeUndefined();
      expect(await store.setPasswordHash(created.id, 'changed', { expected: 'rehashed', change: { at: changedAt, by: 'session-1' } })).toBe(true);
      const changed = await store.findById(created.id);
      expect(await store.getPasswordHash(created.id)).toBe('changed');
      expect(changed?.passwordChangedAt).toEqual(changedAt);
      expect(changed?.passwordChangedBy).toBe('session-1');
      // A later re-hash keeps who changed it and when.
      expect(await store.setPasswordHash(created.id, 'changed, re-hashed', { expected: 'changed' })).toBe(true);
      expect(await store.findById(created.id)).toMatchObject({ passwordChangedAt: changedAt, passwordChangedBy: 'session-1' });
      expect(changed?.createdAt).toEqual(created.createdAt);
    });

    it('replaces the hash only while it is still the expected one (a late re-hash cannot undo a change)', async () => {
      const created = await store.create({ email: 'cas@example.com', passwordHash: HASH });
      const changedAt = new Date(clock.now() + 1000);
      // A password change lands first...
      expect(await store.setPasswordHash(created.id, 'new password hash', { expected: HASH, change: { at: changedAt, by: 'session-2' } })).toBe(true);
      // ...then a login that verified the old hash finishes re-hashing the old password.
      expect(await store.setPasswordHash(created.id, 'old password re-hashed', { expected: HASH })).toBe(false);
      expect(await store.getPasswordHash(created.id)).toBe('new password hash');
      expect((await store.findById(created.id))?.passwordChangedAt).toEqual(changedAt);
      // Of two concurrent writes from the same starting hash, exactly one wins.
      const both = await Promise.all([
        store.setPasswordHash(created.id, 'first', { expected: 'new password hash' }),
        store.setPasswordHash(created.id, 'second', { expected: 'new password hash' }),
      ]);
      expect(both.filter(Boolean)).toHaveLength(1);
      expect(await store.getPasswordHash(created.id)).toBe(both[0] ? 'first' : 'second');
      // An operator object is a value to compare, never a query.
      expect(await store.setPasswordHash(created.id, 'injected', { expected: { $ne: '' } as unknown as string })).toBe(false);
    });

    it('answers null (never an error) for ids that name no user', async () => {
      const created = await store.create({ email: 'someone@example.com', passwordHash: HASH });
      const garbage = ['', 'not-an-id', 'zzzzzzzzzzzzzzzzzzzzzzzz', '0123456789abcdef01234567', `${created.id}x`, '{"$gt":""}'];
      for (const id of garbage) {
        expect(await store.findById(id)).toBeNull();
        expect(await store.getPasswordHash(id)).toBeNull();
        await expect(store.setPasswordHash(id, 'nope', { expected: HASH })).resolves.toBe(false);
      }
      expect(await store.getPasswordHash(created.id)).toBe(HASH);
    });

    it('marks an address verified only while it is still the user’s', async () => {
      const created = await store.create({ email: 'v@example.com', passwordHash: HASH });
      expect(await store.markEmailVerified(created.id, 'other@example.com')).toBe(false);
      expect((await store.findById(created.id))?.emailVerified).toBe(false);
      expect(await store.markEmailVerified(created.id, 'v@example.com')).toBe(true);
      expect((await store.findById(created.id))?.emailVerified).toBe(true);
      expect(await store.markEmailVerified('0123456789abcdef01234567', 'v@example.com')).toBe(false);
      expect((await store.create({ email: 'pre@example.com', passwordHash: HASH, emailVerified: true })).emailVerified).toBe(true);
    });

    it('changes the email only from the expected one, verified, and never onto a taken one', async () => {
      const ada = await store.create({ email: 'ada2@example.com', passwordHash: HASH });
      await store.create({ email: 'taken@example.com', passwordHash: HASH });
      expect(await store.changeEmail(ada.id, 'wrong@example.com', 'new@example.com')).toBe(false);
      await expect(store.changeEmail(ada.id, 'ada2@example.com', 'taken@example.com')).rejects.toBeInstanceOf(DuplicateKeyError);
      expect(await store.changeEmail(ada.id, 'ada2@example.com', 'new@example.com')).toBe(true);
      const moved = await store.findByEmail('new@example.com');
      expect(moved).toMatchObject({ id: ada.id, email: 'new@example.com', emailVerified: true });
      expect(await store.findByEmail('ada2@example.com')).toBeNull();
      // The old address is free again.
      await expect(store.create({ email: 'ada2@example.com', passwordHash: HASH })).resolves.toMatchObject({ email: 'ada2@example.com' });
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}

describeUserStoreContract('memory', async (clock) => ({ store: createMemoryUserStore({ clock }), close: async () => undefined }));

describeUserStoreContract('mongo', async (clock) => {
  const { stores, close } = await openTestMongoStores(inject('mongoUri'), import.meta.url, clock);
  return { store: stores.users, close };
});

describe('mongo UserStore: backend failures', () => {
  it('rejects init with StoreUnavailableError when no server answers', async () => {
    const connection = createMongoConnection(`mongodb://127.0.0.1:${await freePort()}/nowhere`, { serverSelectionTimeoutMS: 300 });
    try {
      await expect(connection.init()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(connection.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(createMongoStores(connection).users.findByEmail('a@example.com')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await connection.close();
    }
  });

  it('turns a server that went away into StoreUnavailableError, from every method', async () => {
    const server = await startMongoEmulator();
    const connection = createMongoConnection(`${server.uri}/gone`, { serverSelectionTimeoutMS: 300 });
    try {
      await connection.init();
      const { users } = createMongoStores(connection);
      const created = await users.create({ email: 'a@example.com', passwordHash: HASH });
      await server.stop();
      const calls: (() => Promise<unknown>)[] = [
        () => users.findByEmail('a@example.com'),
        () => users.findById(created.id),
        () => users.getPasswordHash(created.id),
        () => users.setPasswordHash(created.id, 'x', { expected: HASH }),
        () => users.create({ email: 'b@example.com', passwordHash: HASH }),
        () => users.ping(),
      ];
      for (const call of calls) {
        const error = await call().then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).store).toBe('users');
      }
    } finally {
      await connection.close();
      await server.stop();
    }
  });
});

describe('mongo UserStore: a server that stops answering', () => {
  it('fails an operation whose reply never comes with StoreUnavailableError after operationTimeoutMS, not never', async () => {
    const server = await startMongoEmulator();
    // A TCP proxy that can stop passing bytes on, both ways, while keeping every connection open.
    let frozen = false;
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect(Number(new URL(server.uri).port), '127.0.0.1');
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        sockets.add(from);
        from.on('data', (chunk) => {
          if (!frozen) to.write(chunk);
        });
        from.on('error', () => undefined);
        from.on('close', () => to.destroy());
      }
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const connection = createMongoConnection(`mongodb://127.0.0.1:${(proxy.address() as AddressInfo).port}/stalled`, {
      serverSelectionTimeoutMS: 2000,
      operationTimeoutMS: 500,
    });
    try {
      await connection.init();
      const { users } = createMongoStores(connection);
      const created = await users.create({ email: 'a@example.com', passwordHash: HASH });
      frozen = true;
      const started = performance.now();
      const outcome = await Promise.race([
        users.findById(created.id).then(
          () => 'answered',
          (err: unknown) => err,
        ),
        new Promise((resolve) => setTimeout(() => resolve('still waiting after 3 s'), 3000)),
      ]);
      expect(outcome).toBeInstanceOf(StoreUnavailableError);
      expect(performance.now() - started).toBeLessThan(2000);
      // Once the server answers again, so does the store.
      frozen = false;
      await expect(users.findById(created.id)).resolves.toMatchObject({ email: 'a@example.com' });
    } finally {
      frozen = false;
      await connection.close();
      for (const socket of sockets) socket.destroy();
      proxy.close();
      await server.stop();
    }
  });
});

describe('mongo stores: documents written without the schema (by hand, a migration, an older version)', () => {
  it('read with the schema defaults instead of failing', async () => {
    const connection = createMongoConnection(testDatabaseUri(inject('mongoUri'), 'raw-documents'));
    try {
      await connection.init();
      const { users, clients } = createMongoStores(connection);
      const now = new Date();
      const inserted = await connection.models.User.collection.insertOne({
        email: 'raw@example.com',
        passwordHash: HASH,
        passwordChangedAt: now,
        createdAt: now,
        updatedAt: now,
      });
      await connection.models.Client.collection.insertOne({ clientId: 'raw-app', name: 'Raw', type: 'public', createdAt: now });
      expect(await users.findById(inserted.insertedId.toHexString())).toMatchObject({
        email: 'raw@example.com',
        roles: [],
        disabled: false,
        emailVerified: false,
      });
      expect(await users.findByEmail('raw@example.com')).toMatchObject({ roles: [], disabled: false });
      expect(await clients.findById('raw-app')).toMatchObject({
        firstParty: false,
        grantTypes: [],
        scopes: [],
        audiences: [],
        permissions: [],
        cookieMode: false,
        redirectUris: [],
        requirePar: false,
      });
      // A disabled flag written as something other than a boolean still disables.
      for (const [index, disabled] of [1, 'true', 'yes'].entries()) {
        const odd = await connection.models.User.collection.insertOne({
          email: `odd${index}@example.com`,
          passwordHash: HASH,
          disabled,
          passwordChangedAt: now,
          createdAt: now,
          updatedAt: now,
        });
        expect((await users.findById(odd.insertedId.toHexString()))?.disabled, String(disabled)).toBe(true);
      }
    } finally {
      await connection.models.User.db.dropDatabase();
      await connection.close();
    }
  });
});

describe('mongo error translation', () => {
  const { mongo } = mongoose;
  const serverError = (code: number, errorLabels: string[] = []) => new mongo.MongoServerError({ code, errmsg: `code ${code}`, errorLabels });

  it('reads "cannot serve now" replies as unavailable (503), whatever the server version names them', () => {
    // NotWritablePrimary, LegacyNotPrimary, ShutdownInProgress, MaxTimeMSExpired, ExceededTimeLimit, WriteConcernFailed.
    for (const code of [10107, 10058, 91, 50, 262, 64]) expect(isUnavailable(serverError(code)), `code ${code}`).toBe(true);
    // An overloaded server (MongoDB 8) says so with a label, whatever the code.
    expect(isUnavailable(serverError(462, ['SystemOverloadedError']))).toBe(true);
    expect(isUnavailable(serverError(1, ['RetryableWriteError']))).toBe(true);
  });

  it('keeps real errors as they are: a bad query or a duplicate key is not an outage', () => {
    for (const code of [2, 9, 11000, 121]) expect(isUnavailable(serverError(code)), `code ${code}`).toBe(false);
    expect(isUnavailable(new TypeError('bug'))).toBe(false);
  });
});
