/**
 * Issue 22 item 2: the README's examples run top to bottom. Every block fenced as
 * ```sh readme-run is taken from README.md in order and the blocks run as one
 * `bash -euo pipefail` script against a dev server started as `npm start` starts it (no
 * NODE_ENV, so dev mode: seeded clients and user, the secrets printed on the terminal), on a
 * free port with a Redis of its own. The script gets what a newcomer copies from the terminal
 * (SECRET, PASSWORD, the base URL of the printed hints); curl fails on any HTTP error, and every
 * variable the blocks assign must end up holding a value.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnTracked, stopProcess } from '../support/processes.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { assignedVariables, capturedVariables, runnableBlocks, RUN_MARKER, scriptOf } from './blocks.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
/** The entry `npm start` runs (built to dist/src/start.cjs), run from source as the other process tests do. */
const ENTRY = join(REPO_ROOT, 'src', 'start.cts');
const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

interface DevServer {
  readonly child: ChildProcess;
  /** What the terminal shows a newcomer. */
  readonly base: string;
  readonly secret: string;
  readonly password: string;
  readonly metrics: string;
  output(): string;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let dir: string;
let keysDir: string;
let redis: TestRedis | undefined;
let server: DevServer | undefined;

/** `npm start` on a fresh clone: dev mode, embedded users and clients; here with Redis and the ports set. */
async function startDevServer(redisUrl: string): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const metricsPort = await freePort();
    let output = '';
    const child = spawnTracked(process.execPath, ['--import', 'tsx', ENTRY], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: dir, PORT: String(port), METRICS_PORT: String(metricsPort), REDIS_URL: redisUrl, KEYS_DIR: keysDir },
    });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 60_000;
    while (child.exitCode === null && !(/"msg":"listening"/.test(output) && /Dev mode is ready[\s\S]*\n\n/.test(output)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (child.exitCode !== null && /EADDRINUSE/.test(output) && attempt < 3) continue; // a port taken between freePort and listen
    if (child.exitCode !== null || Date.now() >= deadline) {
      await stopProcess(child, 1000);
      throw new Error(`the dev server did not start:\n${output.slice(-3000)}`);
    }
    const secret = /client demo-service .*secret: (\S+)/.exec(output)?.[1];
    const password = /user +demo@example\.com .*password: (\S+)/.exec(output)?.[1];
    // The base URL of the printed "Get a token" lines: the ISSUER a newcomer's examples use.
    const base = /-d grant_type=client_credentials (http:\/\/\S+)\/oauth\/token/.exec(output)?.[1];
    if (!secret || !password || !base) throw new Error(`the dev server's hints lack the secret, the password or the URL:\n${output}`);
    return { child, base, secret, password, metrics: `http://127.0.0.1:${metricsPort}`, output: () => output };
  }
}

/** Runs a script with `bash -euo pipefail` in a scratch folder, with what the examples read from the environment. */
async function runBash(script: string, file: string): Promise<Run> {
  const path = join(dir, file);
  writeFileSync(path, script);
  const child = spawnTracked('bash', ['-euo', 'pipefail', path], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      TMPDIR: dir,
      BASE: server!.base,
      METRICS: server!.metrics,
      SECRET: server!.secret,
      PASSWORD: server!.password,
      KEYS_DIR: keysDir,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await exited;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

const tail = (run: Run) => `exit ${run.code}\n--- stderr (tail) ---\n${run.stderr.slice(-4000)}\n--- stdout (tail) ---\n${run.stdout.slice(-1500)}`;

async function cleanUp(): Promise<void> {
  if (server) await stopProcess(server.child);
  server = undefined;
  await redis?.stop();
  redis = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'readme-run-'));
  keysDir = join(dir, 'keys');
  try {
    redis = await startTestRedis();
    server = await startDevServer(redis.url);
  } catch (err) {
    await cleanUp();
    throw err;
  }
}, 90_000);

afterAll(cleanUp, 30_000);

describe('the README examples (issue 22 item 2)', () => {
  const blocks = runnableBlocks(README);

  it('marks its runnable blocks and says so', () => {
    // The endpoints, the browser sign-in (with PAR), the admin API and the metrics.
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    expect(README).toContain(RUN_MARKER);
    expect(README).toContain('test/readme/examples.test.ts');
    expect(blocks[0]).toMatch(/^BASE=\$\{BASE:-http:\/\/localhost:3000\}/);
    // The default base URL is the one `npm start` prints on a fresh clone.
    expect(server!.base).toBe(`http://localhost:${new URL(server!.base).port}`);
  });

  it('run top to bottom in one bash session against a fresh dev server, capturing every variable they assign', async () => {
    const script = scriptOf(blocks);
    const run = await runBash(script, 'readme.sh');
    expect(run.code, tail(run)).toBe(0);

    const names = assignedVariables(blocks.join('\n'));
    // What the issue found never captured, and what the later examples need.
    expect(names).toEqual(
      expect.arrayContaining(['AT', 'RT', 'SID', 'JAR', 'COOKIE_AT', 'VERIFY_TOKEN', 'RESET_TOKEN', 'CHANGE_TOKEN', 'ME_AT', 'CODE', 'ADMIN_AT']),
    );
    const captured = capturedVariables(run.stdout);
    for (const name of names) {
      const value = captured.get(name);
      expect(value, `${name} was not captured`).toBeTruthy();
      expect(value, `${name} holds no value`).not.toMatch(/^(undefined|null)$/);
    }
    for (const name of ['AT', 'COOKIE_AT', 'ME_AT', 'SERVICE_AT', 'SPA_AT', 'ADMIN_AT']) expect(captured.get(name), name).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(captured.get('SID')).toBe(JSON.parse(Buffer.from(captured.get('COOKIE_AT')!.split('.')[1]!, 'base64url').toString()).sid);
  }, 120_000);

  it('fail when an example breaks a later one: /auth/me after /auth/logout (the issue), or a block that fails by itself', async () => {
    // The issue's own case, made from the README: the /auth/me line moved after the logout.
    const script = blocks[0]!.split('\n');
    const code = (needle: string) => script.findIndex((line) => !line.trimStart().startsWith('#') && line.includes(needle));
    const logout = code('$BASE/auth/logout');
    const me = code('$BASE/auth/me');
    expect(logout).toBeGreaterThan(me);
    expect(me).toBeGreaterThan(code('$BASE/auth/login'));
    // The block's set-up lines, then its first-party examples from the login to the logout, then /auth/me.
    const setUp = script.slice(0, code('json() {') + 1);
    const prefix = [...setUp, ...script.slice(code('$BASE/auth/login'), logout + 1)];
    const intact = await runBash(scriptOf([prefix.join('\n')]), 'intact.sh');
    expect(intact.code, tail(intact)).toBe(0);
    const broken = await runBash(scriptOf([[...prefix, script[me]!].join('\n')]), 'broken.sh');
    expect(broken.code, tail(broken)).toBe(22); // curl --fail-with-body: HTTP 401
    expect(broken.stdout).toContain('"error":"invalid_token"');
    expect(broken.stderr).toContain('readme-run: exit 22 at: curl --fail-with-body --max-time 20 -s -H "Authorization: Bearer $AT" $BASE/auth/me');

    // Only marked blocks run: an unmarked failing block is skipped, a marked one stops the script.
    const markdown = ['```sh', 'false', '```', '```sh readme-run', 'X=$(echo ok)', '```', '```sh readme-run', 'Y=$(exit 3)', '```'].join('\n');
    expect(runnableBlocks(markdown)).toEqual(['X=$(echo ok)\n', 'Y=$(exit 3)\n']);
    expect((await runBash(scriptOf(runnableBlocks(markdown).slice(0, 1)), 'one.sh')).code).toBe(0);
    expect((await runBash(scriptOf(runnableBlocks(markdown)), 'two.sh')).code).toBe(3);
  }, 60_000);
});
