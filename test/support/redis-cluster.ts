/**
 * A real three-master Redis Cluster for a test file: three `redis-server --cluster-enabled`
 * on free ports in a temp dir, joined with `redis-cli --cluster create`. No persistence.
 * `stop()` (call it in `afterAll`) removes everything; if the test process dies first,
 * `spawnTracked` kills the servers anyway.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { spawnTracked, stopProcess, waitFor } from './processes.js';
import { startRedisServer } from './redis.js';

export interface TestRedisCluster {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  /** A new ioredis Cluster client for assertions; every one is closed by `stop`. */
  client(): Cluster;
  /** FLUSHALL on every master. */
  flush(): Promise<void>;
  /** Failure tests: kills master `index` (SIGKILL; its data is lost, its slots are not). */
  killNode(index: number): Promise<void>;
  /** Starts master `index` again on its port with its cluster config, so it rejoins. */
  restartNode(index: number): Promise<void>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
/** The cluster bus listens on port + 10000, which must be a valid, free port too. */
const MAX_PORT = 55535;

export async function startTestRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const servers: (ChildProcess | undefined)[] = [];
  const clients: (Cluster | Redis)[] = [];

  const stop = async (): Promise<void> => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(servers.splice(0).map((server) => server && stopProcess(server, 1000)));
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const startNode = (port: number) =>
      startRedisServer(port, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
        '--dir',
        dir,
      ]);
    const ports: number[] = [];
    while (ports.length < 3) {
      const port = await clusterPort(ports);
      servers.push(await startNode(port));
      ports.push(port);
    }

    const create = spawnTracked('redis-cli', ['--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', '0', '--cluster-yes']);
    let output = '';
    create.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    create.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => create.once('exit', resolve));
    if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}): ${output.slice(-500)}`);

    // Every node must agree before a client maps slots from any one of them.
    const probes = ports.map((port) => {
      const probe = new Redis({ host: HOST, port, maxRetriesPerRequest: 1 });
      probe.on('error', () => undefined);
      clients.push(probe);
      return probe;
    });
    await waitFor(
      async () => {
        const infos = await Promise.all(probes.map((probe) => probe.cluster('INFO')));
        return infos.every((info) => /cluster_state:ok/.test(info) && /cluster_known_nodes:3/.test(info) && /cluster_slots_ok:16384/.test(info));
      },
      20_000,
      50,
    );
    for (const probe of probes) probe.disconnect();

    const nodes = ports.map((port) => ({ host: HOST, port }));
    return {
      nodes,
      client() {
        const client = new Cluster(
          nodes.map((node) => ({ ...node })),
          { redisOptions: { maxRetriesPerRequest: 1 } },
        );
        client.on('error', () => undefined);
        clients.push(client);
        return client;
      },
      async flush() {
        await Promise.all(
          ports.map(async (port) => {
            const node = new Redis({ host: HOST, port, maxRetriesPerRequest: 1 });
            node.on('error', () => undefined);
            try {
              await node.flushall();
            } finally {
              node.disconnect();
            }
          }),
        );
      },
      async killNode(index) {
        const server = servers[index];
        servers[index] = undefined;
        if (server) {
          server.kill('SIGKILL');
          await stopProcess(server, 0);
        }
      },
      async restartNode(index) {
        if (!servers[index]) servers[index] = await startNode(ports[index]!);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A free port ≤ MAX_PORT whose bus port (port + 10000) is free too. */
async function clusterPort(taken: readonly number[]): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 20000 + Math.floor(Math.random() * (MAX_PORT - 20000));
    if (taken.some((other) => Math.abs(other - port) < 2 || Math.abs(other + 10000 - port) < 2 || Math.abs(other - 10000 - port) < 2)) continue;
    if ((await isFree(port)) && (await isFree(port + 10000))) return port;
  }
  throw new Error('no free port pair for a cluster node');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}
