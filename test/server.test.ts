/**
 * The entry point as a real process: configuration errors, graceful shutdown with a
 * request in flight, and readiness following Redis going away and coming back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawnTracked, stopProcess, waitFor } from './support/processes.js';
import { testDatabaseUri } from './support/mongo.js';
import { startTestRedis, type TestRedis } from './support/redis.js';

/** The entry `npm start` runs (built to dist/src/start.cjs). */
const ENTRY = join(import.meta.dirname, '..', 'src', 'start.cts');
const dirs: string[] = [];

function tempKeys(): string {
  const dir = mkdtempSync(join(tmpdir(), 'server-keys-'));
  dirs.push(dir);
  return dir;
}

interface Started {
  child: ChildProcess;
  /** The port the server chose (PORT=0), known once `untilListening` resolves. */
  port: number;
  output(): string;
  exited: Promise<number | null>;
}

/**
 * Spawns the entry with PORT=0: the server binds a port the kernel picks and logs it. A port
 * found free here and handed over would stay unbound for the seconds a tsx process takes to
 * start, and another test's server could take it meanwhile and answer our requests.
 */
async function startProcess(env: Record<string, string>): Promise<Started> {
  let output = '';
  const child = spawnTracked(process.execPath, ['--import', 'tsx', ENTRY], {
    env: { PATH: process.env.PATH, PORT: '0', KEYS_DIR: tempKeys(), LOG_LEVEL: 'info', ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1', ...env },
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, port: 0, output: () => output, exited };
}

/** Waits for this process's "listening" line, takes the port from its url, then for /healthz. */
async function untilListening(started: Started): Promise<void> {
  await waitFor(() => /"msg":"listening"/.test(started.output()), 30_000, 50);
  const line = started
    .output()
    .split('\n')
    .find((text) => text.includes('"msg":"listening"'))!;
  started.port = Number(new URL((JSON.parse(line) as { url: string }).url).port);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${started.port}/healthz`)).ok, 10_000, 100);
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('start-up', () => {
  it('names HOST/PORT when it cannot listen, and exits 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const started = await startProcess({ PORT: String(port) });
      expect(await started.exited).toBe(1);
      expect(started.output()).toContain(`HOST/PORT: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('refuses bad configuration with one message naming every bad variable, and exits non-zero', async () => {
    const started = await startProcess({ ACCESS_TOKEN_TTL: 'soon', PORT: 'x', NODE_ENV: 'production' });
    expect(await started.exited).toBe(1);
    const out = started.output();
    for (const name of ['ACCESS_TOKEN_TTL', 'PORT', 'MONGODB_URI', 'REDIS_URL', 'ISSUER']) expect(out).toContain(name);
    expect(out).not.toMatch(/\n\s+at /);
  });

  it('serves /healthz in dev mode after printing the in-memory warning, a curl hint, an authorize link, and a warning for a misspelled variable', async () => {
    const started = await startProcess({ ACESS_TOKEN_TTL: '1h' });
    try {
      await untilListening(started);
      await waitFor(() => started.output().includes('curl -s'), 5000);
      expect(started.output()).toMatch(/nothing is persisted/);
      expect(started.output()).toMatch(/curl -s -u demo-service:\S+ -d grant_type=client_credentials/);
      expect(started.output()).toMatch(/\/oauth\/authorize\?response_type=code&client_id=demo-spa&/);
      expect(started.output()).toMatch(/ACESS_TOKEN_TTL is not a variable this service reads \(it is ignored\); did you mean ACCESS_TOKEN_TTL\?/);
    } finally {
      await stopProcess(started.child);
    }
  });
});

describe('the thread pool', () => {
  const listening = (output: string) =>
    output
      .split('\n')
      .filter((line) => line.includes('"msg":"listening"'))
      .map((line) => JSON.parse(line) as { threadPool: number });

  it('gets one thread per core (at least 2) from the entry, unless UV_THREADPOOL_SIZE is set', async () => {
    for (const [env, expected] of [
      [{}, Math.max(2, availableParallelism())],
      [{ UV_THREADPOOL_SIZE: '3' }, 3],
    ] as const) {
      const started = await startProcess(env);
      try {
        await untilListening(started);
        await waitFor(() => listening(started.output()).length > 0, 5000);
        expect(listening(started.output())[0]!.threadPool).toBe(expected);
      } finally {
        await stopProcess(started.child);
      }
    }
  });
});

describe('graceful shutdown', () => {
  it('finishes a request that is in flight when SIGTERM arrives, then exits 0', async () => {
    const started = await startProcess({ DEV_USER_PASSWORD: 'the dev password' });
    await untilListening(started);
    const body = JSON.stringify({ email: 'demo@example.com', password: 'the dev password' });
    const socket = connect(started.port, '127.0.0.1');
    let response = '';
    socket.on('data', (chunk) => (response += chunk.toString()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // Headers and half the body: the request is now in flight inside the server.
    socket.write(
      `POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    started.child.kill('SIGTERM');
    await waitFor(() => started.output().includes('shutting down'), 5000);
    // New connections are refused while the old request is still being served.
    await expect(fetch(`http://127.0.0.1:${started.port}/healthz`)).rejects.toThrow();
    socket.write(body.slice(10));
    await waitFor(() => response.includes('\r\n\r\n') && response.includes('}'), 10_000);
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response).toContain('"access_token"');
    expect(await started.exited).toBe(0);
    socket.destroy();
  });
});

describe('readiness', () => {
  let redis: TestRedis;
  let started: Started;
  beforeAll(async () => {
    redis = await startTestRedis();
    started = await startProcess({ REDIS_URL: redis.url });
    await untilListening(started);
  });
  afterAll(async () => {
    await stopProcess(started.child);
    await redis.stop();
  });

  it('goes 503 naming redis when Redis stops, and back to 200 when it returns', async () => {
    const url = `http://127.0.0.1:${started.port}/readyz`;
    expect((await fetch(url)).status).toBe(200);
    await redis.kill();
    await waitFor(async () => (await fetch(url)).status === 503, 10_000, 100);
    const body = (await (await fetch(url)).json()) as { error: string; error_description: string };
    expect(body).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'not ready: redis',
      checks: { redis: 'failing', 'signing-key': 'ok', 'key-directory': 'ok' },
    });
    expect((await fetch(`http://127.0.0.1:${started.port}/healthz`)).status).toBe(200);
    await redis.restart();
    await waitFor(async () => (await fetch(url)).status === 200, 15_000, 100);
  });
});

describe('key rotation seen by a running server', () => {
  function rotate(keysDir: string, args: string[] = []): Promise<{ code: number | null; stdout: string }> {
    return new Promise((resolve) => {
      const child = spawnTracked(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'scripts', 'keys-rotate.ts'), ...args], {
        env: { PATH: process.env.PATH, KEYS_DIR: keysDir },
      });
      let stdout = '';
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.once('exit', (code) => resolve({ code, stdout }));
    });
  }

  it('publishes a key rotated in by another process, and drops an emergency-rotated one, without a restart', async () => {
    const keysDir = tempKeys();
    const started = await startProcess({ KEYS_DIR: keysDir, DEV_CLIENT_SECRET: 'rotation-test-secret-0123456789' });
    try {
      await untilListening(started);
      const jwks = async () =>
        ((await (await fetch(`http://127.0.0.1:${started.port}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
      const tokenKid = async () => {
        const res = await fetch(`http://127.0.0.1:${started.port}/oauth/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from('demo-service:rotation-test-secret-0123456789').toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: 'grant_type=client_credentials',
        });
        const body = await res.text();
        expect(res.status, body).toBe(200);
        const { access_token } = JSON.parse(body) as { access_token: string };
        return (JSON.parse(Buffer.from(access_token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
      };
      const [original] = await jwks();
      expect(await tokenKid()).toBe(original);

      // A routine step publishes a next key; the server serves it within seconds, still signing with the old one.
      expect((await rotate(keysDir)).code).toBe(0);
      await waitFor(async () => (await jwks()).length === 2, 10_000, 200);
      const next = (await jwks()).find((kid) => kid !== original)!;
      expect(await tokenKid()).toBe(original);

      // Emergency: the original leaves the JWKS at once and new tokens carry the next key's kid.
      const emergency = await rotate(keysDir, ['--emergency', '--kid', original!]);
      expect(emergency.code).toBe(0);
      await waitFor(async () => !(await jwks()).includes(original!), 10_000, 200);
      expect(await tokenKid()).toBe(next);
    } finally {
      await stopProcess(started.child);
    }
    // Three process starts (the server, two rotations) and two reloads: over 20 s once the
    // whole suite loads a slow 2-core machine.
  }, 60_000);
});

describe('cluster mode (WORKERS)', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('refuses more than one worker with embedded stores', async () => {
    const started = await startProcess({ WORKERS: '2' });
    expect(await started.exited).toBe(1);
    expect(started.output()).toMatch(/WORKERS: more than one worker needs MONGODB_URI and REDIS_URL/);
  });

  it('gives up with exit 1 when workers keep failing to start, however slowly they fail', async () => {
    // An unreachable MongoDB fails each worker's start only after the 5 s server-selection
    // timeout: too slow for a count of exits within 10 s, which never gave up here.
    const started = await startProcess({ WORKERS: '2', REDIS_URL: redis.url, MONGODB_URI: 'mongodb://127.0.0.1:1/unreachable' });
    try {
      expect(await started.exited).toBe(1);
      expect(started.output()).toMatch(/"msg":"workers keep failing to start; giving up"/);
      expect((started.output().match(/"msg":"worker exited; starting a new one"/g) ?? []).length).toBe(3);
    } finally {
      await stopProcess(started.child);
    }
  }, 60_000);

  it('serves from several workers sharing the stores, and stops them all on SIGTERM', async () => {
    const started = await startProcess({
      WORKERS: '2',
      REDIS_URL: redis.url,
      MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'cluster'),
      DEV_USER_PASSWORD: 'cluster dev password',
      // No REFRESH_TOKEN_SECRET: the workers must share the one they find (or the first
      // makes) in KEYS_DIR, or a token issued by one is refused by the other.
    });
    try {
      await untilListening(started);
      await waitFor(() => (started.output().match(/"msg":"listening"/g) ?? []).length === 2, 20_000, 100);
      const base = `http://127.0.0.1:${started.port}`;
      const login = await fetch(`${base}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'demo@example.com', password: 'cluster dev password' }),
      });
      expect(login.status).toBe(200);
      let token = ((await login.json()) as { refresh_token: string }).refresh_token;
      // New connections are spread over the workers; every rotation must see the last one.
      for (let i = 0; i < 10; i += 1) {
        const res = await fetch(`${base}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
          body: `grant_type=refresh_token&client_id=demo-app&refresh_token=${token}`,
        });
        expect(res.status).toBe(200);
        token = ((await res.json()) as { refresh_token: string }).refresh_token;
      }
      started.child.kill('SIGTERM');
      expect(await started.exited).toBe(0);
      expect((started.output().match(/"msg":"stopped"/g) ?? []).length).toBe(2);
    } finally {
      await stopProcess(started.child);
    }
    // A primary and two workers start (tsx each) and connect to both stores: over 20 s once
    // the whole suite loads a slow 2-core machine (seen in a fresh-clone CI run on Node 22).
  }, 60_000);
});

describe('the thread pool size for WORKERS', () => {
  it('shares the cores among workers, at least 2 each, and ignores a WORKERS value config would refuse', async () => {
    // thread-pool.cts is CommonJS (`export =`), loaded by the entry before anything else;
    // it is run here the way the entry runs it, in a process of its own.
    const cases: [number, string | null, number][] = [
      [16, null, 16],
      [16, '1', 16],
      [16, '4', 4],
      [16, 'auto', 2],
      [6, '4', 2],
      [1, null, 2],
      [4096, '1', 1024],
      [16, 'many', 16],
    ];
    const script = `const { threadPoolSize } = require(${JSON.stringify(join(import.meta.dirname, '..', 'src', 'thread-pool.cts'))});
      process.stdout.write(JSON.stringify(${JSON.stringify(cases)}.map(([cores, workers]) => threadPoolSize(cores, workers ?? undefined))));`;
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawnTracked(process.execPath, ['--import', 'tsx', '-e', script], { env: { PATH: process.env.PATH } });
      let text = '';
      child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))));
    });
    expect(JSON.parse(output)).toEqual(cases.map(([, , expected]) => expected));
  });
});
