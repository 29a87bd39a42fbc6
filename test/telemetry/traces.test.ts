/**
 * OpenTelemetry traces from a real authority process (src/telemetry/tracing.cts): exported
 * over OTLP/HTTP to a receiver in this test, with the request, Redis and signing spans of one
 * request in one trace, the trace id in that request's log line, and no secret anywhere in
 * what is exported. Without OTEL_EXPORTER_OTLP_ENDPOINT the SDK is not even loaded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { testDatabaseUri } from '../support/mongo.js';
import { spawnTracked, stopProcess, waitFor } from '../support/processes.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

const ENTRY = join(import.meta.dirname, '..', '..', 'src', 'start.cts');
const CLIENT_SECRET = 'traces-test-client-secret-0123456789';
const PASSWORD = 'traces test password 8c1f';
const EMAIL = 'demo@example.com';
const QUERY_SECRET = 'query-secret-5b0e1d9a2c';
const dir = mkdtempSync(join(tmpdir(), 'traces-'));
/** Preloaded into the child: on exit, prints the OpenTelemetry packages it loaded through require(). */
const PROBE = join(dir, 'probe.cjs');
writeFileSync(
  PROBE,
  `process.on('exit', () => process.stderr.write('\\nLOADED ' + JSON.stringify(Object.keys(require.cache).filter((p) => p.includes('@opentelemetry'))) + '\\n'));`,
);

/** OTLP's SpanKind enum: SPAN_KIND_SERVER. */
const SERVER = 2;

interface Attribute {
  key: string;
  value: Record<string, unknown>;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Attribute[];
}
interface OtlpRequest {
  resourceSpans: { resource: { attributes: Attribute[] }; scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[];
}

/** An OTLP/HTTP receiver (JSON encoding): keeps each POST /v1/traces body as received. */
async function startReceiver(): Promise<{ url: string; bodies: string[]; server: Server }> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') bodies.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, server };
}

function spansOf(bodies: string[]): (OtlpSpan & { resource: Attribute[] })[] {
  return bodies.flatMap((body) =>
    (JSON.parse(body) as OtlpRequest).resourceSpans.flatMap((rs) =>
      rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ ...span, resource: rs.resource.attributes }))),
    ),
  );
}

function attribute(span: { attributes?: Attribute[] }, key: string): unknown {
  const found = span.attributes?.find((a) => a.key === key)?.value;
  return found === undefined ? undefined : Object.values(found)[0];
}

interface Started {
  child: ChildProcess;
  output(): string;
  base(): string;
}

async function startAuthority(env: Record<string, string>, workers = 1): Promise<Started> {
  let output = '';
  const child = spawnTracked(process.execPath, ['--require', PROBE, '--import', 'tsx', ENTRY], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      KEYS_DIR: mkdtempSync(join(dir, 'keys-')),
      LOG_LEVEL: 'info',
      ARGON2_MEMORY_KIB: '8192',
      ARGON2_TIME_COST: '1',
      DEV_CLIENT_SECRET: CLIENT_SECRET,
      DEV_USER_PASSWORD: PASSWORD,
      ...env,
    },
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(() => output.split('"msg":"listening"').length > workers, 45_000, 50);
  const line = output.split('\n').find((text) => text.includes('"msg":"listening"'))!;
  const base = new URL((JSON.parse(line) as { url: string }).url).origin;
  return { child, output: () => output, base: () => base };
}

const logLines = (output: string) =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

async function postJson(url: string, body: unknown): Promise<Record<string, string>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, string>;
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  let redis: TestRedis;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let started: Started;
  const secrets: string[] = [PASSWORD, CLIENT_SECRET, QUERY_SECRET];

  beforeAll(async () => {
    redis = await startTestRedis();
    receiver = await startReceiver();
    started = await startAuthority({
      REDIS_URL: redis.url,
      MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'telemetry-traces'),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const base = started.base();
    const login = await postJson(`${base}/auth/login`, { email: EMAIL, password: PASSWORD });
    // A query string is recorded by parameter name only: links and redirects carry codes and tokens there.
    const refreshed = await postJson(`${base}/auth/refresh?code=${QUERY_SECRET}`, { refresh_token: login.refresh_token });
    const res = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`demo-service:${CLIENT_SECRET}`).toString('base64')}`,
      },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(200);
    const service = (await res.json()) as Record<string, string>;
    for (const token of [login.access_token, login.refresh_token, refreshed.access_token, refreshed.refresh_token, service.access_token]) {
      expect(token).toBeTruthy();
      secrets.push(token!, ...token!.split('.').filter((part) => part.length >= 16));
    }
    // A server span ends after its children: once all three are in, so is everything else.
    await waitFor(() => spansOf(receiver.bodies).filter((span) => span.kind === SERVER).length >= 3, 15_000, 100);
  }, 90_000);

  afterAll(async () => {
    await stopProcess(started.child);
    await redis.stop();
    await new Promise((resolve) => receiver.server.close(resolve));
  });

  it('exports a server span per request, with its route, under the service name', () => {
    const spans = spansOf(receiver.bodies);
    const servers = spans.filter((span) => span.kind === SERVER);
    expect(servers.map((span) => attribute(span, 'http.route')).sort()).toEqual(['/auth/login', '/auth/refresh', '/oauth/token']);
    for (const span of servers) {
      expect(span.resource.find((a) => a.key === 'service.name')?.value).toEqual({ stringValue: 'token-authority' });
      expect(attribute(span, 'http.response.status_code')).toBe(200);
    }
    expect(servers.map((span) => attribute(span, 'url.query')).filter(Boolean)).toEqual(['code=[redacted]']);
  });

  it('puts the Redis commands and the signing of each request in its trace, and its trace id in its log line', async () => {
    const spans = spansOf(receiver.bodies);
    for (const server of spans.filter((span) => span.kind === SERVER)) {
      const inTrace = spans.filter((span) => span.traceId === server.traceId && span !== server);
      const route = attribute(server, 'http.route') as string;
      const stores = inTrace.map((span) => attribute(span, 'db.system.name')).filter((system) => system !== undefined);
      expect(stores.length, route).toBeGreaterThan(0);
      // A client_credentials grant reads the client (MongoDB) and keeps nothing in Redis; the others keep a family there.
      if (route !== '/oauth/token') expect(stores, route).toContain('redis');
      for (const span of inTrace) expect(span.parentSpanId, `${span.name} has a parent`).toBeTruthy();
      expect(inTrace.filter((span) => span.name === 'sign access token')).toHaveLength(1);
      // Log lines are written out at least every second (src/log.ts).
      await waitFor(() => logLines(started.output()).some((line) => line.trace_id === server.traceId && line.msg === 'request'), 5000, 50);
    }
  });

  it('records Redis commands by name only', () => {
    const redisSpans = spansOf(receiver.bodies).filter((span) => attribute(span, 'db.system.name') === 'redis');
    expect(redisSpans.length).toBeGreaterThan(0);
    for (const span of redisSpans) expect(attribute(span, 'db.query.text')).toMatch(/^[a-z]+$/);
  });

  it('exports no password, client secret, access or refresh token, in any attribute, event or resource', () => {
    const exported = receiver.bodies.join('\n');
    expect(exported.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(exported).not.toContain(secret);
  });

  it('loaded the SDK (the probe the next test relies on sees it)', async () => {
    await stopProcess(started.child);
    expect(started.output()).toMatch(/LOADED .*@opentelemetry\/sdk-node/);
  });
});

describe('WORKERS=2', () => {
  it('traces the requests of every worker', async () => {
    const redis = await startTestRedis();
    const receiver = await startReceiver();
    const started = await startAuthority(
      {
        WORKERS: '2',
        REDIS_URL: redis.url,
        MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'telemetry-traces-cluster'),
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
      2,
    );
    try {
      // A connection each: the primary hands connections to the workers in turn.
      for (let i = 0; i < 4; i += 1) {
        const res = await fetch(`${started.base()}/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', connection: 'close' },
          body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
        });
        expect(res.status).toBe(200);
      }
      await waitFor(() => spansOf(receiver.bodies).filter((span) => span.kind === SERVER).length >= 4, 15_000, 100);
      const spans = spansOf(receiver.bodies);
      const servers = spans.filter((span) => span.kind === SERVER);
      const pids = new Set(servers.map((span) => JSON.stringify(span.resource.find((a) => a.key === 'process.pid')?.value)));
      expect(pids.size).toBe(2);
      for (const server of servers) {
        expect(spans.some((span) => span.traceId === server.traceId && attribute(span, 'db.system.name') === 'redis')).toBe(true);
      }
    } finally {
      await stopProcess(started.child);
      await redis.stop();
      await new Promise((resolve) => receiver.server.close(resolve));
    }
  }, 90_000);
});

describe('without OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  it('loads no OpenTelemetry SDK or instrumentation, and logs no trace ids', async () => {
    const receiver = await startReceiver();
    // Every other tracing variable set, the traces endpoint included: only the one switch starts tracing.
    const started = await startAuthority({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    try {
      await postJson(`${started.base()}/auth/login`, { email: EMAIL, password: PASSWORD });
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await stopProcess(started.child);
      await new Promise((resolve) => receiver.server.close(resolve));
    }
    const loaded = /LOADED (.*)/.exec(started.output())?.[1];
    expect(loaded).toBeDefined();
    expect((JSON.parse(loaded!) as string[]).filter((path) => /@opentelemetry\/(sdk-|instrumentation|exporter)/.test(path))).toEqual([]);
    expect(receiver.bodies).toEqual([]);
    expect(logLines(started.output()).filter((line) => 'trace_id' in line)).toEqual([]);
  }, 60_000);
});
