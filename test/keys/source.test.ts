import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { manualClock, systemClock } from '../../src/clock.js';
import { createKeyRingSource, KeyRingError, keyFileName, MANIFEST_FILE, rotateKeys, type KeyRingSource } from '../../src/keys/index.js';
import { captureLogs } from '../support/logs.js';
import { waitFor } from '../support/processes.js';
import { keyPool, removeTempDirs, runScript, tempKeysDir, TIMINGS } from './helpers.js';

const generateKey = keyPool();
const sources: KeyRingSource[] = [];

function source(dir: string, options: { production?: boolean; pollIntervalMs?: number } = {}) {
  const logs = captureLogs();
  const created = createKeyRingSource({
    dir,
    production: options.production ?? false,
    clock: systemClock,
    logger: logs.logger,
    pollIntervalMs: options.pollIntervalMs ?? 500,
    generateKey,
  });
  sources.push(created);
  return { source: created, logs };
}

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
});
afterAll(removeTempDirs);

describe('first start', () => {
  it('in dev, creates the directory and an active RS256 key, warning that it did', async () => {
    const dir = await tempKeysDir();
    const { source: keys, logs } = source(dir);
    expect(keys.ready()).toBe(false);
    expect(() => keys.current()).toThrow(KeyRingError);
    await keys.start();
    expect(keys.ready()).toBe(true);
    const ring = keys.current();
    expect(ring.keys).toHaveLength(1);
    expect(ring.active).toMatchObject({ alg: 'RS256', state: 'active' });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, keyFileName(ring.active.kid)))).mode & 0o777).toBe(0o600);
    expect(logs.text()).toMatch(/generated a development key/);
    expect(logs.text()).not.toMatch(/"d":/);
  });

  it('in dev, tightens a checked-out keys/ directory (0755) before writing the first key into it', async () => {
    const dir = await tempKeysDir();
    await mkdir(dir, { mode: 0o755 });
    await writeFile(join(dir, '.gitignore'), '*\n', { mode: 0o644 });
    const { source: keys, logs } = source(dir);
    await keys.start();
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(logs.entries().filter((entry) => entry.level === 'warn' && /mode 0/.test(String(entry.msg)))).toEqual([]);
  });

  it('in production, refuses to start without keys and says to run keys:rotate', async () => {
    const dir = await tempKeysDir();
    await mkdir(dir, { mode: 0o700 });
    const { source: keys } = source(dir, { production: true });
    await expect(keys.start()).rejects.toThrow(/no signing keys; run `npm run keys:rotate`/);
    expect(keys.ready()).toBe(false);
  });
});

describe('live reload', () => {
  it('keeps serving the previous ring when the directory becomes invalid, and logs why', async () => {
    const dir = await tempKeysDir();
    const clock = manualClock();
    await rotateKeys({ dir, clock, production: false, ...TIMINGS, generateKey });
    const { source: keys, logs } = source(dir, { pollIntervalMs: 60_000 });
    await keys.start();
    const before = keys.current();

    await writeFile(join(dir, MANIFEST_FILE), '{ broken', { mode: 0o600 });
    await keys.reload();
    expect(keys.current()).toBe(before);
    expect(keys.ready()).toBe(true);
    const failure = logs.entries().find((entry) => entry.level === 'error');
    expect(failure).toMatchObject({ file: join(dir, MANIFEST_FILE) });
    expect(String(failure?.msg)).toMatch(/keeping the previous key ring/);

    // Reported once, not on every poll of an unchanged (still broken) directory.
    await keys.reload();
    expect(logs.entries().filter((entry) => entry.level === 'error')).toHaveLength(1);
  });

  it('tries a failed load again on the next poll, though the directory looks unchanged since the failure', async () => {
    const dir = await tempKeysDir();
    await rotateKeys({ dir, clock: manualClock(), production: false, ...TIMINGS, generateKey });
    const { source: keys, logs } = source(dir, { pollIntervalMs: 60_000 });
    await keys.start();
    const before = keys.current();
    await rotateKeys({ dir, clock: manualClock(), production: false, ...TIMINGS, generateKey, emergencyKid: before.active.kid });

    // A transient failure: the new manifest cannot be read at the first reload after the
    // rotation (here it is garbage of the same size), then reads fine, with the same inode,
    // size and mtime, so nothing about the directory tells that it changed in between.
    const manifest = join(dir, MANIFEST_FILE);
    const good = await readFile(manifest);
    const { mtime } = await stat(manifest);
    await writeFile(manifest, Buffer.alloc(good.length, 0x20));
    await utimes(manifest, mtime, mtime);
    expect(await keys.reload()).toBe(false);
    expect(keys.current()).toBe(before);
    await writeFile(manifest, good);
    await utimes(manifest, mtime, mtime);

    expect(await keys.reload()).toBe(true);
    expect(keys.current().keys.map((key) => key.kid)).not.toContain(before.active.kid);
    expect(logs.entries().filter((entry) => entry.level === 'error')).toHaveLength(1);
  });

  it('picks up a rotation made by keys:rotate in another process, without a restart', async () => {
    const dir = await tempKeysDir();
    await rotateKeys({ dir, clock: systemClock, production: false, ...TIMINGS, generateKey });
    const { source: keys, logs } = source(dir, { pollIntervalMs: 1000 });
    await keys.start();
    const before = keys.current();

    const result = await runScript('keys-rotate', ['--emergency', '--kid', before.active.kid], { KEYS_DIR: dir });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    await waitFor(() => keys.current().jwks.etag !== before.jwks.etag, 5000);

    const after = keys.current();
    expect(after.keys.map((key) => key.kid)).not.toContain(before.active.kid);
    expect(after.active.kid).toBe(before.keys.find((key) => key.state === 'next')!.kid);
    expect(logs.text()).toMatch(/signing keys reloaded/);
  });

  it('notices a change through the directory watch well before the next poll', async () => {
    const dir = await tempKeysDir();
    await rotateKeys({ dir, clock: systemClock, production: false, ...TIMINGS, generateKey });
    const { source: keys } = source(dir, { pollIntervalMs: 60_000 });
    await keys.start();
    const before = keys.current();
    await rotateKeys({ dir, clock: systemClock, production: false, ...TIMINGS, generateKey, emergencyKid: before.active.kid });
    // The rotation writes several files; a reload may first see an intermediate (valid,
    // unchanged) state, so wait for the outcome itself.
    await waitFor(() => keys.current().active.kid !== before.active.kid, 3000);
    expect(keys.current().keys.map((key) => key.kid)).not.toContain(before.active.kid);
  });
});
