/**
 * A real Redis for a test file: `REDIS_TEST_URL` when set (each vitest worker uses its own
 * database index there), otherwise a `redis-server` of our own on a free port, with no
 * persistence. Never the shared Redis on 6379.
 */
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, spawnTracked, stopProcess, waitFor } from './processes.js';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** An ioredis client for assertions (MEMORY USAGE, TTL...). Closed by `stop`. */
  readonly client: Redis;
  /** Empties the database: call between suites. */
  flush(): Promise<void>;
  /** Stops the server (kills the process, or only disconnects when external). */
  stop(): Promise<void>;
  /** Stops and restarts our own server on the same port (failure tests); external: throws. */
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** Stall tests: SIGSTOP / SIGCONT our own server (it keeps its connections, answers nothing); external: throws. */
  pause(): void;
  resume(): void;
}

export async function startRedisServer(port: number, extraArgs: readonly string[] = []): Promise<ChildProcess> {
  const child = spawnTracked('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'no',
    '--loglevel',
    'warning',
    ...extraArgs,
  ]);
  child.once('error', () => undefined);
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } finally {
      probe.disconnect();
    }
  }, 10_000);
  return child;
}

export async function startTestRedis(): Promise<TestRedis> {
  const external = process.env.REDIS_TEST_URL;
  if (external) {
    const db = Number(process.env.VITEST_POOL_ID ?? '1') % 16;
    const url = new URL(external);
    url.pathname = `/${db}`;
    const client = new Redis(url.toString());
    await client.flushdb();
    return {
      url: url.toString(),
      port: Number(url.port || 6379),
      client,
      flush: async () => void (await client.flushdb()),
      stop: async () => void client.disconnect(),
      kill: async () => {
        throw new Error('cannot kill an external Redis (REDIS_TEST_URL)');
      },
      restart: async () => {
        throw new Error('cannot restart an external Redis (REDIS_TEST_URL)');
      },
      pause: () => {
        throw new Error('cannot pause an external Redis (REDIS_TEST_URL)');
      },
      resume: () => {
        throw new Error('cannot resume an external Redis (REDIS_TEST_URL)');
      },
    };
  }

  const port = await freePort();
  let child: ChildProcess | undefined = await startRedisServer(port);
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    client,
    flush: async () => void (await client.flushall()),
    stop: async () => {
      client.disconnect();
      child?.kill('SIGCONT');
      if (child) await stopProcess(child);
      child = undefined;
    },
    kill: async () => {
      if (child) await stopProcess(child, 100);
      child = undefined;
    },
    restart: async () => {
      if (!child) child = await startRedisServer(port);
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
  };
}
