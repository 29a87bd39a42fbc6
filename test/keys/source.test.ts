import { sampleKeys } from '../../src/metrics/instrument.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { chown, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { manualClock, systemClock } from '../../src/clock.js';
import { createKeyRingSource, KeyRingError, keyFileName, MANIFEST_FILE, rotateKeys, type KeyRingSource } from '../../src/keys/index.js';
import { captureLogs } from '../support/logs.js';
import { waitFor } from '../support/processes.js';
import request from 'supertest';
import { checkReadableBy } from '../../src/keys/rotation.js';
import { startTestService } from '../support/app.js';
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
    // Meanwhile the removed key is neither published nor used (issue 23 item 8).
    expect(keys.current().keys.map((key) => key.kid)).toEqual(before.keys.map((key) => key.kid).filter((kid) => kid !== before.active.kid));
    expect(keys.current().canSign).toBe(false);
    await writeFile(manifest, good);
    await utimes(manifest, mtime, mtime);

    expect(await keys.reload()).toBe(true);
    expect(keys.current().keys.map((key) => key.kid)).not.toContain(before.active.kid);
    expect(keys.current().canSign).toBe(true);
    expect(logs.entries().filter((entry) => entry.level === 'error' && /keeping the previous/.test(String(entry.msg)))).toHaveLength(1);
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

describe('a reload that keeps failing (issue 23 item 8)', () => {
  it('after an emergency rotation it cannot load, stops publishing and signing with the removed key and is not ready', async () => {
    const dir = await tempKeysDir();
    await rotateKeys({ dir, clock: manualClock(), production: false, ...TIMINGS, generateKey });
    const { source: keys, logs } = source(dir, { pollIntervalMs: 60_000 });
    await keys.start();
    const compromised = keys.current().active.kid;
    expect(keys.reloadFailure()).toBeUndefined();
    // The metric an alert can watch: authority_key_directory_ok, read at scrape time.
    const metrics = createMetrics({ defaultMetrics: false });
    sampleKeys(metrics, keys, TIMINGS, () => Date.now());
    const directoryOk = async () => (await metrics.registry.getSingleMetric('authority_key_directory_ok')!.get()).values[0]?.value;
    expect(await directoryOk()).toBe(1);

    // The emergency rotation removes the key's file; its new manifest is unreadable to this
    // server (written by another user: here garbage, since root reads any file).
    await rotateKeys({ dir, clock: manualClock(), production: false, ...TIMINGS, generateKey, emergencyKid: compromised });
    await writeFile(join(dir, MANIFEST_FILE), '{ unreadable', { mode: 0o600 });
    expect(await keys.reload()).toBe(false);
    const ring = keys.current();
    expect(ring.keys.map((key) => key.kid)).not.toContain(compromised);
    expect(JSON.stringify(JSON.parse(ring.jwks.body.toString()))).not.toContain(compromised);
    expect(ring.verificationKey(compromised)).toBeUndefined();
    expect(() => ring.signingKey()).toThrow(expect.objectContaining({ status: 503 }));
    expect(keys.ready()).toBe(false);
    expect(logs.text()).toMatch(/not signing until it can/);

    // One failure may be transient; the second in a row is reported.
    expect(keys.reloadFailure()).toBeUndefined();
    await keys.reload();
    expect(keys.reloadFailure()).toMatch(/keyring\.json/);
    expect(await directoryOk()).toBe(0);

    // Fixed: the next reload takes the new ring and everything is well again.
    await rm(join(dir, MANIFEST_FILE));
    await rotateKeys({ dir, clock: manualClock(), production: false, ...TIMINGS, generateKey });
    expect(await keys.reload()).toBe(true);
    expect(keys.ready()).toBe(true);
    expect(keys.reloadFailure()).toBeUndefined();
    expect(await directoryOk()).toBe(1);
    expect(keys.current().signingKey().kid).not.toBe(compromised);
  });

  it('shows in /readyz as a 503 naming the key directory, and token requests get 503, not a token from the removed key', async () => {
    const service = await startTestService();
    try {
      const dir = service.config.keysDir;
      const compromised = service.keys.current().active.kid;
      await rotateKeys({ dir, clock: manualClock(), production: false, ...TIMINGS, generateKey, emergencyKid: compromised });
      await writeFile(join(dir, MANIFEST_FILE), '{ unreadable', { mode: 0o600 });
      await service.keys.reload();
      await service.keys.reload();
      const ready = await request(service.callback).get('/readyz').expect(503);
      expect(ready.body).toMatchObject({ error: 'temporarily_unavailable', checks: { 'key-directory': 'failing', 'signing-key': 'failing' } });
      expect(ready.body.error_description).toMatch(/key-directory/);
      const token = await request(service.callback)
        .post('/oauth/token')
        .set('Authorization', service.basic)
        .type('form')
        .send({ grant_type: 'client_credentials' })
        .expect(503);
      expect(token.body.error).toBe('temporarily_unavailable');
      const jwks = await request(service.callback).get('/.well-known/jwks.json').expect(200);
      expect(jwks.text).not.toContain(compromised);
    } finally {
      await service.close();
    }
  });
});

describe('keys:rotate run by another user than the owner of KEYS_DIR (issue 23 item 8)', () => {
  const root = process.getuid?.() === 0;

  it.skipIf(!root)('refuses before writing anything, naming the owner', async () => {
    const dir = await tempKeysDir();
    await rotateKeys({ dir, clock: systemClock, production: false, ...TIMINGS, generateKey });
    await chown(dir, 65534, 65534);
    const before = await readFile(join(dir, MANIFEST_FILE), 'utf8');
    const result = await runScript('keys-rotate', ['--emergency', '--kid', JSON.parse(before).keys[0].kid], { KEYS_DIR: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^keys:rotate: .*belongs to uid 65534 but this runs as uid 0.*sudo -u '#65534'/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(await readFile(join(dir, MANIFEST_FILE), 'utf8')).toBe(before);
  });

  it.skipIf(!root)('checks that what it wrote is readable by that owner', async () => {
    const dir = await tempKeysDir();
    const result = await rotateKeys({ dir, clock: systemClock, production: false, ...TIMINGS, generateKey });
    const file = join(dir, keyFileName(result.after![0]!.kid));
    await expect(checkReadableBy(dir, 0, [MANIFEST_FILE, keyFileName(result.after![0]!.kid)])).resolves.toBeUndefined();
    await chown(file, 65534, 65534);
    await expect(checkReadableBy(dir, 0, [MANIFEST_FILE, keyFileName(result.after![0]!.kid)])).rejects.toThrow(/not readable by the owner .*uid 0.*chown 0/);
  });
});
