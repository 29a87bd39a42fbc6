/**
 * WORKERS=2: the primary serves /metrics, the sum of both workers' registries (prom-client's
 * AggregatorRegistry over the cluster IPC channel); the workers serve none of their own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, inject, it } from 'vitest';
import { testDatabaseUri } from '../support/mongo.js';
import { spawnTracked, stopProcess, waitFor } from '../support/processes.js';
import { startTestRedis } from '../support/redis.js';
import { scrape, valueOf } from './support.js';

const ENTRY = join(import.meta.dirname, '..', '..', 'src', 'start.cts');
const SECRET = 'cluster-metrics-secret-0123456789';
const keysDir = mkdtempSync(join(tmpdir(), 'metrics-cluster-keys-'));

afterAll(() => rmSync(keysDir, { recursive: true, force: true }));

const logged = (output: string, msg: string) =>
  output
    .split('\n')
    .filter((line) => line.includes(`"msg":"${msg}"`))
    .map((line) => JSON.parse(line) as { url: string });

it('aggregates the workers’ metrics in the primary', async () => {
  const redis = await startTestRedis();
  let output = '';
  const child = spawnTracked(process.execPath, ['--import', 'tsx', ENTRY], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      METRICS_PORT: '0',
      WORKERS: '2',
      KEYS_DIR: keysDir,
      REDIS_URL: redis.url,
      MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'metrics-cluster'),
      DEV_CLIENT_SECRET: SECRET,
      LOG_LEVEL: 'info',
      ARGON2_MEMORY_KIB: '8192',
      ARGON2_TIME_COST: '1',
    },
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitFor(() => logged(output, 'listening').length === 2 && logged(output, 'metrics listening').length === 1, 45_000, 100);
    const base = new URL(logged(output, 'listening')[0]!.url).origin;
    const metricsUrl = logged(output, 'metrics listening')[0]!.url;
    const basic = `Basic ${Buffer.from(`demo-service:${SECRET}`).toString('base64')}`;
    // A new connection each: the primary hands connections to the workers in turn.
    for (let i = 0; i < 10; i += 1) {
      const res = await fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic, connection: 'close' },
        body: 'grant_type=client_credentials',
      });
      expect(res.status).toBe(200);
    }
    const samples = await scrape(metricsUrl);
    expect(valueOf(samples, 'authority_tokens_issued_total', { grant: 'client_credentials', client: 'demo-service' })).toBe(10);
    expect(valueOf(samples, 'http_request_duration_seconds_count', { route: '/oauth/token', method: 'POST', status_class: '2xx' })).toBe(10);
    // Gauges are not summed: both workers see one active key and a reachable Redis.
    expect(valueOf(samples, 'authority_keys', { state: 'active' })).toBe(1);
    expect(valueOf(samples, 'authority_store_up', { store: 'redis' })).toBe(1);
  } finally {
    await stopProcess(child);
    await redis.stop();
  }
}, 90_000);
