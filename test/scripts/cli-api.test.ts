/**
 * Issue 22 item 1 as a newcomer meets it: a dev server started as a real process seeds an
 * admin client and writes its credentials into KEYS_DIR; `client:create` then works with
 * no other step, through the admin API, and `--help` answers with the usage.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTracked, stopProcess, waitFor } from '../support/processes.js';

const ROOT = join(import.meta.dirname, '..', '..');
const keysDir = mkdtempSync(join(tmpdir(), 'cli-api-keys-'));
const baseEnv = { PATH: process.env.PATH ?? '', KEYS_DIR: keysDir, ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1' };
let server: ChildProcess;
let output = '';
let url = '';

function run(script: string, args: string[], env: Record<string, string> = {}, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawnTracked(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', script), ...args], {
      env: { ...baseEnv, ...env },
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

beforeAll(async () => {
  server = spawnTracked(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'start.cts')], { env: { ...baseEnv, PORT: '0', LOG_LEVEL: 'info' } });
  server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(() => output.includes('admin client credentials written'), 30_000, 50);
  const line = output.split('\n').find((text) => text.includes('"msg":"listening"'))!;
  url = (JSON.parse(line) as { url: string }).url;
}, 40_000);

afterAll(async () => {
  if (server) await stopProcess(server);
  rmSync(keysDir, { recursive: true, force: true });
});

describe('--help', () => {
  it('every script answers --help with its usage on stdout and exit 0', async () => {
    const scripts = ['client-create.ts', 'user-create.ts', 'keys-list.ts', 'keys-rotate.ts'];
    const outs = await Promise.all(scripts.map((script) => run(script, ['--help'])));
    outs.forEach((out, index) => {
      expect(out.code, scripts[index]).toBe(0);
      expect(out.stdout, scripts[index]).toMatch(/^usage: /);
      expect(out.stderr, scripts[index]).toBe('');
    });
  }, 20_000);
});

describe('client:create against a running dev server', () => {
  it('works with no other step, and the new client gets a token', async () => {
    expect(statSync(join(keysDir, 'dev-admin-client.json')).mode & 0o777).toBe(0o600);
    const out = await run('client-create.ts', ['--name', 'x', '--grant', 'client_credentials']);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    const clientId = /client_id=(\S+)/.exec(out.stdout)![1]!;
    const secret = /client_secret=(\S+)/.exec(out.stdout)![1]!;
    const res = await fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(200);
    // The secrets never reach the server's log.
    expect(output).not.toContain(secret);
  }, 20_000);

  it('user:create works too, and the user can log in', async () => {
    const password = 'the new user password 42';
    const out = await run('user-create.ts', ['--email', 'cli@example.com', '--password-stdin', '--role', 'support'], {}, password);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toMatch(/^user_id=\S+ email=cli@example.com roles=support\n$/);
    const login = await fetch(`${url}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'cli@example.com', password }),
    });
    expect(login.status).toBe(200);
    expect(output).not.toContain(password);
  }, 20_000);

  it('answers --help with its usage and exit 0; a bad option or a wrong --url with one line and non-zero', async () => {
    const [help, bad, unreachable] = await Promise.all([
      run('client-create.ts', ['--help']),
      run('client-create.ts', ['--name', 'x', '--bogus']),
      run('client-create.ts', ['--name', 'x', '--url', 'http://127.0.0.1:1']),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: npm run client:create');
    expect(help.stdout).toContain('--id-token-signed-response-alg ALG');
    expect(help.stdout).toContain('RS256 or PS256 (default RS256; never none)');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Unknown option '--bogus'");
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr.trim()).toBe('client:create: cannot reach http://127.0.0.1:1 (is the server running? --url names another one)');
  }, 20_000);
});
