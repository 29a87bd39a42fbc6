/**
 * The new admin scripts (client:list, user:disable, sessions:end) against a running dev
 * server (a real process on a real Redis), through its admin API as a newcomer runs them:
 * credentials from the file the dev server writes, nothing else to set.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTracked, stopProcess, waitFor } from '../support/processes.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const ROOT = join(import.meta.dirname, '..', '..');
const keysDir = mkdtempSync(join(tmpdir(), 'admin-cli-keys-'));
const baseEnv = { PATH: process.env.PATH ?? '', KEYS_DIR: keysDir, ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' };
let redis: TestRedis;
let server: ChildProcess;
let output = '';
let url = '';

type Run = { code: number | null; stdout: string; stderr: string };
function run(script: string, args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawnTracked(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', script), ...args], {
      env: baseEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin?.end(stdin);
  });
}

const post = (path: string, body: unknown) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }).then(async (res) => ({
    status: res.status,
    body: (await res.json()) as Record<string, string>,
  }));
const login = (email: string, password: string) => post('/auth/login', { email, password });
const refresh = (token: string) => post('/auth/refresh', { refresh_token: token });
const sidOf = (at: string) => (JSON.parse(Buffer.from(at.split('.')[1]!, 'base64url').toString()) as { sid: string }).sid;

async function createUser(email: string, password: string): Promise<string> {
  const out = await run('user-create.ts', ['--email', email, '--password-stdin'], password);
  expect(out).toMatchObject({ code: 0, stderr: '' });
  return /user_id=(\S+)/.exec(out.stdout)![1]!;
}

beforeAll(async () => {
  redis = await startTestRedis();
  server = spawnTracked(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'start.cts')], {
    env: { ...baseEnv, PORT: '0', LOG_LEVEL: 'info', REDIS_URL: redis.url },
  });
  server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(() => output.includes('admin client credentials written'), 30_000, 50);
  const line = output.split('\n').find((text) => text.includes('"msg":"listening"'))!;
  url = (JSON.parse(line) as { url: string }).url;
}, 40_000);

afterAll(async () => {
  if (server) await stopProcess(server);
  await redis?.stop();
  rmSync(keysDir, { recursive: true, force: true });
});

describe('--help and bad input', () => {
  it('package.json runs each as the other admin scripts are run: built, then from dist/', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const [name, file] of [
      ['client:list', 'client-list'],
      ['user:disable', 'user-disable'],
      ['sessions:end', 'sessions-end'],
    ]) {
      expect(scripts[name!]).toBe(`node scripts/build.mjs && node dist/scripts/${file}.js`);
      expect(existsSync(join(ROOT, 'scripts', `${file}.ts`))).toBe(true);
    }
  });

  it('each new script answers --help with its usage on stdout and exit 0', async () => {
    const scripts = { 'client-list.ts': 'client:list', 'user-disable.ts': 'user:disable', 'sessions-end.ts': 'sessions:end' };
    for (const [script, name] of Object.entries(scripts)) {
      const out = await run(script, ['--help']);
      expect(out, script).toMatchObject({ code: 0, stderr: '' });
      expect(out.stdout, script).toMatch(new RegExp(`^usage: npm run ${name} -- `));
    }
  }, 30_000);

  it('answers a bad option or a missing user with one line and a non-zero exit', async () => {
    const [bogus, limit, both, none, missing] = await Promise.all([
      run('client-list.ts', ['--bogus']),
      run('client-list.ts', ['--limit', '0']),
      run('user-disable.ts', ['--id', 'x', '--email', 'y@example.org']),
      run('sessions-end.ts', []),
      run('user-disable.ts', ['--email', 'nobody@example.org']),
    ]);
    expect(bogus).toMatchObject({ code: 2, stdout: '' });
    expect(bogus.stderr).toContain("client:list: Unknown option '--bogus'");
    expect(limit).toMatchObject({ code: 2, stderr: 'client:list: --limit must be 1 to 200\n' });
    expect(both).toMatchObject({ code: 2, stderr: 'user:disable: name the user with exactly one of --id and --email\n' });
    expect(none).toMatchObject({ code: 2, stderr: 'sessions:end: name the user with exactly one of --id and --email\n' });
    expect(missing).toMatchObject({ code: 1, stderr: 'user:disable: no user with email nobody@example.org\n' });
    const unknownId = await run('sessions-end.ts', ['--id', 'no-such-user']);
    expect(unknownId.code).toBe(1);
    expect(unknownId.stderr).toMatch(/^sessions:end: 404 not_found: no user with id .no-such-user.\n$/);
  }, 30_000);
});

describe('against a running dev server', () => {
  it('client:list lists every client, across pages, as a table or JSON', async () => {
    for (let i = 0; i < 3; i++) expect((await run('client-create.ts', ['--name', `listed ${i}`, '--id', `listed-${i}`, '--scope', 'read'])).code).toBe(0);
    const table = await run('client-list.ts', ['--limit', '2']);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    const ids = table.stdout
      .trim()
      .split('\n')
      .map((line) => line.split('\t')[0]);
    expect(ids).toEqual(expect.arrayContaining(['demo-app', 'demo-service', 'demo-spa', 'listed-0', 'listed-1', 'listed-2']));
    expect(new Set(ids).size).toBe(ids.length);
    expect(table.stdout).toContain('listed-1\tconfidential\tclient_credentials\tread\tlisted 1\n');
    const json = await run('client-list.ts', ['--json']);
    const parsed = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { client_id: string });
    expect(parsed.map((client) => client.client_id)).toEqual(ids);
    expect(json.stdout).not.toMatch(/secret/i);
  }, 60_000);

  it('user:disable ends every session at once and refuses login; --enable lets the user back', async () => {
    const password = 'the disabled user password 1';
    const id = await createUser('disable-me@example.org', password);
    const session = await login('disable-me@example.org', password);
    expect(session.status).toBe(200);
    const out = await run('user-disable.ts', ['--email', 'Disable-Me@example.org']);
    expect(out).toMatchObject({ code: 0, stderr: '', stdout: `user_id=${id} email=disable-me@example.org disabled=true sessions_ended=1\n` });
    expect((await refresh(session.body.refresh_token!)).body.error).toBe('invalid_grant');
    expect((await login('disable-me@example.org', password)).status).toBe(400);
    const enabled = await run('user-disable.ts', ['--id', id, '--enable']);
    expect(enabled).toMatchObject({ code: 0, stdout: `user_id=${id} email=disable-me@example.org disabled=false\n` });
    expect((await login('disable-me@example.org', password)).status).toBe(200);
  }, 60_000);

  it('sessions:end ends one session, then all of them', async () => {
    const password = 'the sessions user password 2';
    const id = await createUser('sessions@example.org', password);
    const [a, b, c] = [
      await login('sessions@example.org', password),
      await login('sessions@example.org', password),
      await login('sessions@example.org', password),
    ];
    const one = await run('sessions-end.ts', ['--email', 'sessions@example.org', '--session', sidOf(a.body.access_token!)]);
    expect(one).toMatchObject({ code: 0, stderr: '', stdout: `user_id=${id} sessions_ended=1\n` });
    expect((await refresh(a.body.refresh_token!)).body.error).toBe('invalid_grant');
    expect((await refresh(b.body.refresh_token!)).status).toBe(200);
    const all = await run('sessions-end.ts', ['--id', id]);
    expect(all).toMatchObject({ code: 0, stderr: '', stdout: `user_id=${id} sessions_ended=2\n` });
    expect((await refresh(c.body.refresh_token!)).body.error).toBe('invalid_grant');
    expect((await login('sessions@example.org', password)).status).toBe(200);
    expect(output).not.toContain(password);
  }, 60_000);
});
