/**
 * Issue 22 item 4, with real processes: the keys and secret a dev server makes are marked,
 * a production server refuses to start with them (naming the files and the command), and
 * keys:rotate in production replaces them, after which production starts.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { testDatabaseUri } from '../support/mongo.js';
import { spawnTracked, stopProcess, waitFor } from '../support/processes.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { removeTempDirs, REPO_ROOT, runScript, tempKeysDir } from './helpers.js';

const ENTRY = join(REPO_ROOT, 'src', 'start.cts');

interface Started {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function startServer(env: Record<string, string>): Started {
  let output = '';
  const child = spawnTracked(process.execPath, ['--import', 'tsx', ENTRY], {
    env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'info', ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1', ...env },
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

const listening = (started: Started) => waitFor(() => /"msg":"listening"/.test(started.output()), 30_000, 50);

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
  await removeTempDirs();
});

describe('keys and secrets made by a dev server (issue 22 item 4)', () => {
  it('are marked; production refuses them, naming the files and the command; keys:rotate in production replaces them', async () => {
    const dir = await tempKeysDir();
    const dev = startServer({ KEYS_DIR: dir });
    try {
      await listening(dev);
    } finally {
      await stopProcess(dev.child);
    }
    const manifest = JSON.parse(await readFile(join(dir, 'keyring.json'), 'utf8')) as { keys: { kid: string }[] };
    const devKid = manifest.keys[0]!.kid;
    const devSecret = await readFile(join(dir, 'refresh-token.secret'), 'utf8');
    expect(JSON.parse(await readFile(join(dir, 'dev-made.json'), 'utf8')).files.sort()).toEqual([`${devKid}.jwk.json`, 'refresh-token.secret'].sort());

    const production = {
      NODE_ENV: 'production',
      KEYS_DIR: dir,
      ISSUER: 'http://127.0.0.1:3999',
      REDIS_URL: redis.url,
      MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'dev-keys'),
    };
    const refused = startServer(production);
    expect(await refused.exited).toBe(1);
    expect(refused.output()).toContain(join(dir, `${devKid}.jwk.json`));
    expect(refused.output()).toContain(join(dir, 'refresh-token.secret'));
    expect(refused.output()).toContain('NODE_ENV=production npm run keys:rotate');
    expect(refused.output()).not.toMatch(/"msg":"listening"/);

    const rotated = await runScript('keys-rotate', [], production);
    expect(rotated).toMatchObject({ code: 0, stderr: '' });
    expect(rotated.stdout).toMatch(new RegExp(`removed ${devKid}: a development server made it`));
    expect(rotated.stdout).toMatch(/removed .*refresh-token\.secret: a development server made it/);
    expect(existsSync(join(dir, `${devKid}.jwk.json`))).toBe(false);
    expect(await readFile(join(dir, 'refresh-token.secret'), 'utf8')).not.toBe(devSecret);
    expect(JSON.parse(await readFile(join(dir, 'dev-made.json'), 'utf8')).files).toEqual([]);

    const started = startServer(production);
    try {
      await listening(started);
      const line = started
        .output()
        .split('\n')
        .find((text) => text.includes('"msg":"listening"'))!;
      const jwks = await (await fetch(`${(JSON.parse(line) as { url: string }).url}/.well-known/jwks.json`)).text();
      expect(jwks).not.toContain(devKid);
    } finally {
      await stopProcess(started.child);
    }
  }, 90_000);
});
