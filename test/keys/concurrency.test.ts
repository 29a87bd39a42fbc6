import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { breakStale } from '../../src/keys/lock.js';
import { REFRESH_SECRET_FILE } from '../../src/keys/refresh-secret.js';
import { generatePrivateJwk } from '../../src/keys/algorithms.js';
import { loadKeyDir, LOCK_FILE, rotateKeys, withKeyDirLock, type KeyGenerator } from '../../src/keys/index.js';
import { keyPool, removeTempDirs, runScript, tempKeysDir, TIMINGS } from './helpers.js';

afterAll(removeTempDirs);

async function expectValidRing(dir: string, keyCount: number): Promise<void> {
  const state = await loadKeyDir(dir, { production: true });
  expect(state.keys.filter((key) => key.state === 'active')).toHaveLength(1);
  expect(state.keys).toHaveLength(keyCount);
  expect(state.orphans).toEqual([]);
  expect(state.tempFiles).toEqual([]);
  // keys:rotate also leaves the refresh-token secret (refresh-secret.test.ts) beside the ring,
  // and a .gitignore in a folder it created.
  expect((await readdir(dir)).filter((name) => name !== REFRESH_SECRET_FILE && name !== '.gitignore').sort()).toEqual(
    [...state.keys.map((key) => `${key.kid}.jwk.json`), 'keyring.json'].sort(),
  );
}

describe('concurrent rotations', () => {
  it("serialise in one process: the second plans from the first one's result", async () => {
    const dir = await tempKeysDir();
    const pool = keyPool();
    // Slow key generation widens the window in which two unlocked rotations would both see an empty ring.
    const slow: KeyGenerator = async (alg) => {
      await new Promise((resolve) => setTimeout(resolve, 150));
      return pool(alg);
    };
    const options = { dir, clock: manualClock(), production: true, ...TIMINGS, generateKey: slow };
    const results = await Promise.all([rotateKeys(options), rotateKeys(options)]);
    expect(results.flatMap((result) => result.created)).toHaveLength(2);
    expect(results.map((result) => result.plan.steps.length).sort()).toEqual([0, 2]);
    await expectValidRing(dir, 2);
  });

  it('two keys:rotate processes started together leave a valid ring', async () => {
    const dir = await tempKeysDir();
    const runs = await Promise.all([runScript('keys-rotate', [], { KEYS_DIR: dir }), runScript('keys-rotate', [], { KEYS_DIR: dir })]);
    for (const run of runs) {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
    }
    expect(runs.filter((run) => /created active/.test(run.stdout))).toHaveLength(1);
    expect(runs.filter((run) => /again in/.test(run.stdout))).toHaveLength(1);
    await expectValidRing(dir, 2);
  });
});

describe('the directory lock', () => {
  const quickKeys: KeyGenerator = () => generatePrivateJwk('EdDSA');
  const options = (dir: string) => ({ dir, clock: manualClock(), production: true, ...TIMINGS, alg: 'EdDSA' as const, generateKey: quickKeys });
  const lock = (dir: string, pid: number) =>
    writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname(), token: 'x', createdAt: new Date().toISOString() }));

  it('waits for a live holder and then fails with a message naming the lock file', async () => {
    const dir = await tempKeysDir();
    await mkdir(dir, { mode: 0o700 });
    await lock(dir, process.pid);
    await expect(rotateKeys({ ...options(dir), lock: { timeoutMs: 300 } })).rejects.toThrow(
      `${join(dir, LOCK_FILE)}: another key rotation holds the lock (pid ${process.pid} on ${hostname()}`,
    );
  });

  it('keys:rotate dates its keys from when it got the lock, not from when it started waiting', async () => {
    const dir = await tempKeysDir();
    await mkdir(dir, { mode: 0o700 });
    await lock(dir, process.pid);
    const script = runScript('keys-rotate', [], { KEYS_DIR: dir });
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const releasedAt = Date.now();
    await rm(join(dir, LOCK_FILE));
    expect(await script).toMatchObject({ code: 0 });
    const { keys } = await loadKeyDir(dir, { production: false });
    // Whole seconds in the manifest: at most 1 s before the release, not the 4 s of the wait.
    for (const key of keys) expect(key.createdAt).toBeGreaterThanOrEqual(releasedAt - 1000);
  }, 30_000);

  it('puts back a lock that is not the one judged stale, even on the same inode', async () => {
    // A file system may hand a deleted stale lock's inode to the next lock created: the
    // bytes, not only the inode number, must match before the file is thrown away.
    const dir = await tempKeysDir();
    await mkdir(dir, { recursive: true });
    const path = join(dir, LOCK_FILE);
    const live = JSON.stringify({ pid: process.pid, host: hostname(), token: 'the live holder' });
    await writeFile(path, live);
    const { ino } = await stat(path);
    await breakStale(path, { ino, text: JSON.stringify({ pid: 1, host: hostname(), token: 'the stale one' }) });
    expect(await readFile(path, 'utf8')).toBe(live);
    expect((await readdir(dir)).filter((name) => name.includes('.stale-'))).toEqual([]);
    // The one judged, bytes and all, is broken.
    await breakStale(path, { ino, text: live });
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('breaks a lock whose holder process is gone', async () => {
    const dir = await tempKeysDir();
    await mkdir(dir, { mode: 0o700 });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await lock(dir, dead);
    await rotateKeys({ ...options(dir), lock: { timeoutMs: 2000 } });
    await expectValidRing(dir, 2);
  });

  it('breaks a lock older than the stale age even if its pid is alive', async () => {
    const dir = await tempKeysDir();
    await mkdir(dir, { mode: 0o700 });
    await lock(dir, process.pid);
    const old = new Date(Date.now() - 120_000);
    await utimes(join(dir, LOCK_FILE), old, old);
    await rotateKeys({ ...options(dir), lock: { timeoutMs: 2000 } });
    await expectValidRing(dir, 2);
  });

  it('three rotations breaking one stale lock at once: no two of them commit while both inside (150 rounds)', async () => {
    // A deleted lock's inode number can go straight to the next lock, and a third process
    // can create the lock while a second puts back one it moved by mistake: a holder may
    // lose its lock. What must never happen is two holders both passing `held` (the check
    // made just before the manifest is replaced) inside overlapping critical sections.
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    let doubleCommits = 0;
    let lost = 0;
    for (let round = 0; round < 150; round += 1) {
      const dir = await tempKeysDir();
      await mkdir(dir, { mode: 0o700 });
      await lock(dir, dead);
      const committed: { from: number; to: number }[] = [];
      // A breaker that moved a live lock aside by mistake puts it back; if its holder
      // released meanwhile (finding no file to remove), the lock outlives it. Every holder
      // here shares this live pid, so only age frees such a lock: a short stale age keeps
      // the rounds going (a real holder exits, and on its host a dead pid frees it at once).
      const job = () =>
        withKeyDirLock(
          dir,
          async (held) => {
            const from = performance.now();
            await new Promise((resolve) => setTimeout(resolve, 5));
            try {
              await held();
            } catch {
              lost += 1;
              return;
            }
            committed.push({ from, to: performance.now() });
          },
          { timeoutMs: 5000, staleMs: 1000 },
        );
      await Promise.all([job(), job(), job()]);
      const overlapping = committed.some((a, i) => committed.some((b, j) => i < j && a.from < b.to && b.from < a.to));
      if (overlapping) doubleCommits += 1;
    }
    expect(doubleCommits).toBe(0);
    console.log(`lock race: 150 rounds, ${lost} lost locks detected before committing, 0 double commits`);
  }, 60_000);
});
