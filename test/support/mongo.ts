/**
 * The MongoDB the test run uses, picked once by the global setup:
 *   1. `MONGODB_TEST_URI`: a real server someone provides;
 *   2. mongodb-memory-server, when it has a `mongod` binary or can download one;
 *   3. otherwise the in-process wire-protocol emulator (`./mongo-emulator/`), so that the
 *      suite runs offline on a machine without `mongod`.
 * Each test file then works in a database of its own (`testDatabaseUri`).
 */
import { randomBytes } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { connect } from 'node:net';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock } from '../../src/clock.js';
import { createMongoConnection, createMongoStores } from '../../src/stores/mongo/connection.js';
import { startMongoEmulator } from './mongo-emulator/index.js';

export type MongoBackendKind = 'external' | 'memory-server' | 'emulator';

export interface MongoBackend {
  /** Connection string without a database name; pass it through `testDatabaseUri`. */
  readonly uri: string;
  readonly kind: MongoBackendKind;
  /** One line for the test log, e.g. `emulator (set MONGODB_TEST_URI for a real server)`. */
  readonly description: string;
  stop(): Promise<void>;
}

/** Budget of the "can mongodb-memory-server get a binary?" probe; the whole fallback stays far under 10 s. */
const PROBE_TIMEOUT_MS = 1_500;
/** A real download (normal machine, first run) may take a while; past this, use the emulator. */
const MEMORY_SERVER_START_TIMEOUT_MS = 180_000;

export async function startMongoBackend(): Promise<MongoBackend> {
  const external = process.env.MONGODB_TEST_URI;
  if (external) return useExternal(external);

  const memory = await tryMemoryServer();
  if (memory) return memory;

  const emulator = await startMongoEmulator();
  return {
    uri: emulator.uri,
    kind: 'emulator',
    description: 'emulator (set MONGODB_TEST_URI for a real server)',
    stop: () => emulator.stop(),
  };
}

async function useExternal(uri: string): Promise<MongoBackend> {
  let version: string;
  try {
    version = await serverVersion(uri);
  } catch (err) {
    // The driver's message names hosts, never the credentials of the URI.
    throw new Error(`MONGODB_TEST_URI: the server cannot be reached (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  return { uri, kind: 'external', description: `external server from MONGODB_TEST_URI (mongod ${version})`, stop: async () => undefined };
}

export interface MemoryServerProbe {
  /** Whether mongodb-memory-server can start a mongod: a binary is there or can be downloaded. */
  readonly available: boolean;
  readonly reason: string;
}

/**
 * Decides, without downloading anything, whether mongodb-memory-server can run: a system
 * or cached binary exists, or the download host answers a TCP connect within the budget.
 * Leaves no socket or timer behind.
 */
export async function probeMemoryServer(): Promise<MemoryServerProbe> {
  const { DryMongoBinary } = await import('mongodb-memory-server');
  const options = await DryMongoBinary.generateOptions();
  const binary = await DryMongoBinary.locateBinary(options);
  if (binary) return { available: true, reason: `mongod binary at ${binary}` };
  if (/^(false|0|no)$/i.test(process.env.MONGOMS_RUNTIME_DOWNLOAD ?? '')) {
    return { available: false, reason: 'no mongod binary and MONGOMS_RUNTIME_DOWNLOAD is off' };
  }
  const target = downloadEndpoint();
  const reachable = await tcpReachable(target.host, target.port, PROBE_TIMEOUT_MS);
  return reachable
    ? { available: true, reason: `mongod ${options.version} downloadable from ${target.host}` }
    : { available: false, reason: `no mongod binary and ${target.host}:${target.port} is unreachable` };
}

async function tryMemoryServer(): Promise<MongoBackend | undefined> {
  const probe = await probeMemoryServer();
  if (!probe.available) return undefined;
  const { MongoMemoryServer } = await import('mongodb-memory-server');
  let timer: NodeJS.Timeout | undefined;
  const starting = MongoMemoryServer.create();
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), MEMORY_SERVER_START_TIMEOUT_MS);
  });
  try {
    const server = await Promise.race([starting, timeout]);
    if (server === 'timeout') {
      // Stop it should it come up later, so it cannot outlive the run.
      starting.then(
        (late) => late.stop(),
        () => undefined,
      );
      return undefined;
    }
    const uri = server.getUri().replace(/\/$/, '');
    return {
      uri,
      kind: 'memory-server',
      description: `mongodb-memory-server (mongod ${await serverVersion(uri)})`,
      stop: async () => void (await server.stop()),
    };
  } catch {
    // A failed download or a mongod that cannot start: the emulator still runs the suite.
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Where mongodb-memory-server would download from (or the proxy it would go through). */
function downloadEndpoint(): { host: string; port: number } {
  const proxy = process.env.HTTPS_PROXY ?? process.env.https_proxy ?? process.env.HTTP_PROXY ?? process.env.http_proxy;
  const source = proxy ?? process.env.MONGOMS_DOWNLOAD_URL ?? process.env.MONGOMS_DOWNLOAD_MIRROR ?? 'https://fastdl.mongodb.org';
  try {
    const url = new URL(source);
    return { host: url.hostname, port: Number(url.port) || (url.protocol === 'http:' ? 80 : 443) };
  } catch {
    return { host: 'fastdl.mongodb.org', port: 443 };
  }
}

/**
 * A bounded reachability check: DNS through c-ares (cancellable, unlike getaddrinfo),
 * then a TCP connect, both within `timeoutMs`; everything is torn down on return.
 */
async function tcpReachable(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const resolver = new dns.Resolver({ timeout: Math.ceil(timeoutMs / 2), tries: 1 });
  let address = host;
  if (!/^[\d.]+$|:/.test(host)) {
    try {
      const addresses = await resolver.resolve4(host).catch(() => resolver.resolve6(host));
      if (!addresses[0]) return false;
      address = addresses[0];
    } catch {
      return false;
    } finally {
      resolver.cancel();
    }
  }
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const finish = (result: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(false), Math.ceil(timeoutMs / 2));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** The `version` of buildInfo, through the driver mongoose ships. */
async function serverVersion(uri: string): Promise<string> {
  const { default: mongoose } = await import('mongoose');
  const client = new mongoose.mongo.MongoClient(uri, { serverSelectionTimeoutMS: 5_000, connectTimeoutMS: 5_000 });
  try {
    const info = await client.db('admin').command({ buildInfo: 1 });
    return String(info.version);
  } finally {
    await client.close();
  }
}

/**
 * `baseUri` pointed at a database of the caller's own: named after `name` (a test file's
 * path or `import.meta.url`) plus a random suffix, so parallel files never share data.
 * Credentials keep authenticating against the database they were meant for.
 */
export function testDatabaseUri(baseUri: string, name: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/)([^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/.exec(baseUri);
  if (!match) throw new Error('testDatabaseUri: expected a mongodb:// or mongodb+srv:// connection string');
  const [, scheme = '', authority = '', originalDb = '', query = ''] = match;
  const params = new URLSearchParams(query);
  if (authority.includes('@') && !params.has('authSource')) params.set('authSource', decodeURIComponent(originalDb) || 'admin');
  const search = params.toString();
  return `${scheme}${authority}/${testDatabaseName(name)}${search ? `?${search}` : ''}`;
}

/** At most 63 bytes and only characters every MongoDB deployment accepts in a database name. */
export function testDatabaseName(name: string): string {
  const file = name.startsWith('file:') ? fileURLToPath(name) : name;
  const slug =
    basename(file)
      .replace(/\.(test|spec)\.[cm]?[jt]s$/, '')
      .replace(/[^A-Za-z0-9_-]+/g, '_')
      .slice(0, 40) || 'test';
  return `t_${slug}_${randomBytes(6).toString('hex')}`;
}

/**
 * The MongoDB stores on a database of their own, for a contract suite: `close` drops the
 * database and closes the connection.
 */
export async function openTestMongoStores(
  baseUri: string,
  name: string,
  clock: Clock,
): Promise<{ stores: ReturnType<typeof createMongoStores>; close(): Promise<void> }> {
  const connection = createMongoConnection(testDatabaseUri(baseUri, name), { clock });
  await connection.init();
  return {
    stores: createMongoStores(connection),
    async close() {
      await connection.models.User.db.dropDatabase();
      await connection.close();
    },
  };
}
