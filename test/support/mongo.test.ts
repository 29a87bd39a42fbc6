/**
 * Backend selection: without MONGODB_TEST_URI and without a usable mongod, the suite must
 * fall back to the emulator quickly (no hanging download) and leave nothing running.
 */
import mongoose from 'mongoose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { probeMemoryServer, startMongoBackend, testDatabaseName, testDatabaseUri } from './mongo.js';

describe('startMongoBackend', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.MONGODB_TEST_URI;
    delete process.env.MONGODB_TEST_URI;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.MONGODB_TEST_URI;
    else process.env.MONGODB_TEST_URI = saved;
  });

  it('without MONGODB_TEST_URI picks a working backend within 10 s, the emulator when mongod cannot be had', async () => {
    // Timed cold, first thing: module loading is part of what the global setup pays.
    const started = performance.now();
    const backend = await startMongoBackend();
    const elapsedMs = performance.now() - started;
    const probe = await probeMemoryServer();
    try {
      if (!probe.available) {
        expect(backend.kind).toBe('emulator');
        expect(backend.description).toBe('emulator (set MONGODB_TEST_URI for a real server)');
        expect(elapsedMs).toBeLessThan(10_000);
      }
      const connection = await mongoose.createConnection(testDatabaseUri(backend.uri, import.meta.url), { serverSelectionTimeoutMS: 2_000 }).asPromise();
      try {
        expect(await connection.db!.admin().command({ ping: 1 })).toMatchObject({ ok: 1 });
      } finally {
        await connection.close();
      }
    } finally {
      await backend.stop();
    }
  });
});

describe('testDatabaseUri', () => {
  it('gives each caller its own database and keeps hosts and options', () => {
    const a = testDatabaseUri('mongodb://127.0.0.1:27017', '/repo/test/stores/users.contract.test.ts');
    const b = testDatabaseUri('mongodb://127.0.0.1:27017', '/repo/test/stores/users.contract.test.ts');
    expect(a).toMatch(/^mongodb:\/\/127\.0\.0\.1:27017\/t_users_contract_[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
    expect(testDatabaseUri('mongodb://h1:1,h2:2/?replicaSet=rs', 'file:///repo/test/x.test.ts')).toMatch(
      /^mongodb:\/\/h1:1,h2:2\/t_x_[0-9a-f]{12}\?replicaSet=rs$/,
    );
  });

  it('keeps credentials authenticating where they did', () => {
    expect(testDatabaseUri('mongodb://u:p@h/appdb', 'a.test.ts')).toMatch(/^mongodb:\/\/u:p@h\/t_a_[0-9a-f]{12}\?authSource=appdb$/);
    expect(testDatabaseUri('mongodb://u:p@h', 'a.test.ts')).toMatch(/\?authSource=admin$/);
    expect(testDatabaseUri('mongodb://u:p@h/appdb?authSource=other', 'a.test.ts')).toMatch(/\?authSource=other$/);
  });

  it('makes names MongoDB accepts from any input', () => {
    const name = testDatabaseName(`${'weird name.with/dots$and*stars'.repeat(5)}.test.ts`);
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(() => testDatabaseUri('http://example.com', 'x')).toThrow(/mongodb:\/\//);
  });
});
