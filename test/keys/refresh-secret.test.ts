/**
 * The refresh-token MAC key kept in KEYS_DIR when REFRESH_TOKEN_SECRET is unset: made once,
 * the same for every process that asks at the same time, read strictly in production, and
 * required (never made) by a production server.
 */
import { chmod, link, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { KeyRingError } from '../../src/keys/errors.js';
import { ensureRefreshSecret, readRefreshSecret, REFRESH_SECRET_FILE } from '../../src/keys/refresh-secret.js';
import { createService } from '../../src/compose.js';
import { captureLogs } from '../support/logs.js';
import { removeTempDirs, runScript, tempKeysDir } from './helpers.js';

afterAll(removeTempDirs);

describe('the refresh-token secret in KEYS_DIR', () => {
  it('is created once, 0600 in a 0700 directory, and read back unchanged', async () => {
    const dir = await tempKeysDir();
    expect(await readRefreshSecret(dir, { production: true })).toBeUndefined();
    const first = await ensureRefreshSecret(dir, { production: false });
    expect(first.created).toBe(true);
    expect(first.secret).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect((await stat(join(dir, REFRESH_SECRET_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await ensureRefreshSecret(dir, { production: false })).toEqual({ secret: first.secret, created: false });
    expect(await readRefreshSecret(dir, { production: true })).toBe(first.secret);
  });

  it('is the same for 20 processes asking at once: one creates it, the others read it', async () => {
    const dir = await tempKeysDir();
    const results = await Promise.all(Array.from({ length: 20 }, () => ensureRefreshSecret(dir, { production: false })));
    expect(results.filter((result) => result.created)).toHaveLength(1);
    expect(new Set(results.map((result) => result.secret)).size).toBe(1);
    expect((await readFile(join(dir, REFRESH_SECRET_FILE), 'utf8')).trim()).toBe(results[0]!.secret);
  });

  it('removes what a crashed creator left (a second link, a lone temp file) once it is a minute old', async () => {
    const dir = await tempKeysDir();
    const { secret } = await ensureRefreshSecret(dir, { production: false });
    const file = join(dir, REFRESH_SECRET_FILE);
    const leftLink = `${file}.creating-1-aaaaaaaa`;
    const leftFile = `${file}.creating-2-bbbbbbbb`;
    const fresh = `${file}.creating-3-cccccccc`;
    await link(file, leftLink);
    await writeFile(leftFile, 'x'.repeat(64), { mode: 0o600 });
    await writeFile(fresh, 'y'.repeat(64), { mode: 0o600 });
    const old = new Date(Date.now() - 120_000);
    await utimes(leftLink, old, old); // the same inode as the secret: its mtime moves too
    await utimes(leftFile, old, old);
    expect(await ensureRefreshSecret(dir, { production: false })).toEqual({ secret, created: false });
    expect((await readdir(dir)).filter((name) => name !== '.gitignore').sort()).toEqual([REFRESH_SECRET_FILE, `${REFRESH_SECRET_FILE}.creating-3-cccccccc`]);
    expect(await readRefreshSecret(dir, { production: true })).toBe(secret);
  });

  it('refuses a short secret and (in production) a loose mode, naming the file without quoting it; follows a symlink', async () => {
    const dir = await tempKeysDir();
    await ensureRefreshSecret(dir, { production: false });
    const file = join(dir, REFRESH_SECRET_FILE);

    await writeFile(file, 'too-short-secret\n', { mode: 0o600 });
    const short = await readRefreshSecret(dir, { production: false }).catch((err: unknown) => err);
    expect(short).toBeInstanceOf(KeyRingError);
    expect((short as Error).message).toBe(`${file}: the refresh-token secret must be at least 32 characters`);

    await writeFile(file, `${'s'.repeat(40)}\n`);
    await chmod(file, 0o644);
    expect(await readRefreshSecret(dir, { production: false })).toBe('s'.repeat(40));
    const loose = await readRefreshSecret(dir, { production: true }).catch((err: unknown) => err);
    expect((loose as Error).message).toMatch(/mode 0644 gives other users access/);
    expect((loose as Error).message).not.toContain('s'.repeat(40));

    const elsewhere = join(await tempKeysDir(), '..', 'outside.secret');
    await writeFile(elsewhere, 'o'.repeat(40), { mode: 0o600 });
    const linked = await tempKeysDir();
    await mkdir(linked, { mode: 0o700 });
    await symlink(elsewhere, join(linked, REFRESH_SECRET_FILE));
    // As a Kubernetes Secret mount presents it; the mode checked is the target's.
    expect(await readRefreshSecret(linked, { production: true })).toBe('o'.repeat(40));
    await chmod(elsewhere, 0o644);
    await expect(readRefreshSecret(linked, { production: true })).rejects.toThrow(/mode 0644/);
  });
});

describe('where the server and keys:rotate get it', () => {
  const production = { NODE_ENV: 'production', MONGODB_URI: 'mongodb://127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1', ISSUER: 'https://as.test' };

  it('a production server without REFRESH_TOKEN_SECRET or the file refuses to start, saying what to run', async () => {
    const dir = await tempKeysDir();
    const logs = captureLogs();
    const failed = await createService(parseConfig({ ...production, KEYS_DIR: dir }), { logger: logs.logger }).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(KeyRingError);
    expect((failed as Error).message).toMatch(/REFRESH_TOKEN_SECRET is unset and KEYS_DIR holds no refresh-token\.secret: run `npm run keys:rotate`/);
    // It made none of its own: another instance would have refused its tokens.
    expect(await readRefreshSecret(dir, { production: false })).toBeUndefined();
  });

  it('a dev server that cannot keep one in KEYS_DIR still starts, on a key of its own, and says so', async () => {
    const dir = await tempKeysDir();
    // Something it can neither read as the secret nor replace (as root, a read-only
    // directory cannot be simulated; this reaches the same fallback).
    await mkdir(join(dir, REFRESH_SECRET_FILE), { recursive: true });
    const logs = captureLogs();
    const password = 'a long dev password';
    const service = await createService(parseConfig({ KEYS_DIR: dir, DEV_USER_PASSWORD: password }), { logger: logs.logger });
    try {
      const warning = logs.entries().find((entry) => entry.level === 'warn' && String(entry.msg).startsWith('refresh tokens: no MAC key in KEYS_DIR'));
      expect(warning?.reason).toMatch(/refresh-token secret/);
      const login = await request(service.app.callback()).post('/auth/login').send({ email: 'demo@example.com', password }).expect(200);
      const refreshed = await request(service.app.callback()).post('/auth/refresh').send({ refresh_token: login.body.refresh_token }).expect(200);
      expect(refreshed.body.refresh_token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(logs.text()).not.toContain(login.body.refresh_token);
    } finally {
      await service.close();
    }
    expect((await stat(join(dir, REFRESH_SECRET_FILE))).isDirectory()).toBe(true);
  });

  it('keys:rotate creates it when REFRESH_TOKEN_SECRET is unset, never in a dry run, never when it is set', async () => {
    const dryDir = await tempKeysDir();
    const dry = await runScript('keys-rotate', ['--dry-run'], { KEYS_DIR: dryDir });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would create ${join(dryDir, REFRESH_SECRET_FILE)}`);
    expect(await readRefreshSecret(dryDir, { production: false })).toBeUndefined();

    const dir = await tempKeysDir();
    const made = await runScript('keys-rotate', [], { KEYS_DIR: dir });
    expect(made.code).toBe(0);
    expect(made.stdout).toContain(`created ${join(dir, REFRESH_SECRET_FILE)}`);
    const secret = await readRefreshSecret(dir, { production: true });
    expect(secret).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(made.stdout + made.stderr).not.toContain(secret);
    const again = await runScript('keys-rotate', [], { KEYS_DIR: dir });
    expect(again.stdout).not.toContain(REFRESH_SECRET_FILE);
    expect(await readRefreshSecret(dir, { production: true })).toBe(secret);

    const withEnv = await tempKeysDir();
    await runScript('keys-rotate', [], { KEYS_DIR: withEnv, REFRESH_TOKEN_SECRET: 'e'.repeat(40) });
    expect(await readRefreshSecret(withEnv, { production: false })).toBeUndefined();
  });
});
