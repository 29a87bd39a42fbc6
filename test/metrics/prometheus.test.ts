/**
 * A real Prometheus (Debian's `prometheus` package) scrapes a running authority every
 * second while the test issues tokens, replays a refresh token and fails a login; the test
 * then asks Prometheus's HTTP API for the counters. The alert rules of deploy/prometheus are
 * loaded too, so Prometheus itself accepts them against live series.
 *
 * Without /usr/bin/prometheus (`.ci/run` installs it) the test says so loudly and reads the
 * exposition directly instead.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { freePort, spawnTracked, stopProcess, waitFor } from '../support/processes.js';
import { startRealServer, type RealServer } from '../support/real-server.js';
import { runFlows, scrape, valueOf } from './support.js';

const PROMETHEUS = '/usr/bin/prometheus';
const ALERTS = join(import.meta.dirname, '..', '..', 'deploy', 'prometheus', 'alerts.yml');
const havePrometheus = existsSync(PROMETHEUS);

let server: RealServer;
let prometheus: ChildProcess | undefined;
let prometheusUrl = '';
let output = '';
const dir = mkdtempSync(join(tmpdir(), 'prometheus-'));

beforeAll(async () => {
  server = await startRealServer(inject('mongoUri'), 'prometheus', { METRICS_PORT: '0', REFRESH_REUSE_GRACE: '0s' });
  if (!havePrometheus) {
    console.warn(`\n*** ${PROMETHEUS} is missing: NOT testing with a real Prometheus (apt-get install prometheus); reading the exposition instead ***\n`);
    return;
  }
  const target = new URL(server.running.metrics!.url);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${JSON.stringify(ALERTS)}`,
      'scrape_configs:',
      '  - job_name: token-authority',
      `    metrics_path: ${target.pathname}`,
      '    static_configs:',
      `      - targets: [${JSON.stringify(target.host)}]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  prometheusUrl = `http://127.0.0.1:${port}`;
  prometheus = spawnTracked(PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ]);
  prometheus.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  prometheus.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(async () => (await query('up{job="token-authority"}'))[0]?.value === 1, 15_000, 200).catch((err: unknown) => {
    throw new Error(`Prometheus did not scrape the authority: ${output.slice(-2000)}`, { cause: err });
  });
}, 40_000);

afterAll(async () => {
  if (prometheus) await stopProcess(prometheus);
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Result {
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** An instant query through the HTTP API (/api/v1/query). */
async function query(promql: string): Promise<Result[]> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: promql })}`);
  const body = (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
  return body.data.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
}

const EXPECTED: [promql: string, labels: Record<string, string>, value: number][] = [
  ['authority_tokens_issued_total', { grant: 'client_credentials', client: 'demo-service' }, 1],
  ['authority_tokens_issued_total', { grant: 'password', client: 'demo-app' }, 1],
  ['authority_tokens_issued_total', { grant: 'refresh_token', client: 'demo-app' }, 1],
  ['authority_token_requests_refused_total', { grant: 'refresh_token', error: 'invalid_grant' }, 1],
  ['authority_refresh_reuse_detected_total', {}, 1],
  ['authority_refresh_families_revoked_total', { reason: 'reuse' }, 1],
  ['authority_logins_total', { outcome: 'wrong_credentials' }, 1],
];

it('sees the tokens issued, the refresh-token reuse and the failed login through its query API', async () => {
  await runFlows(server.issuer.origin);
  if (!havePrometheus) {
    const samples = await scrape(server.running.metrics!.url);
    for (const [name, labels, value] of EXPECTED) expect(valueOf(samples, name, labels), name).toBe(value);
    return;
  }
  const selector = (name: string, labels: Record<string, string>) =>
    `${name}{job="token-authority"${Object.entries(labels)
      .map(([key, value]) => `,${key}="${value}"`)
      .join('')}}`;
  // Scraped every second: wait for the scrape that follows the flows.
  await waitFor(async () => (await query(selector('authority_logins_total', { outcome: 'wrong_credentials' })))[0]?.value === 1, 10_000, 250);
  for (const [name, labels, value] of EXPECTED) {
    const found = await query(selector(name, labels));
    expect(
      found.map((r) => r.value),
      `${name} ${JSON.stringify(labels)}`,
    ).toEqual([value]);
  }
  // A counter present from the start at 0: Prometheus sees it go up.
  expect((await query('increase(authority_refresh_reuse_detected_total{job="token-authority"}[1m])'))[0]!.value).toBeGreaterThan(0);
  expect((await query('sum(increase(authority_refresh_rotations_total[1m]))'))[0]!.value).toBeGreaterThan(0);
  // The alert rules loaded and evaluate against the live series.
  const rules = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string }[] }[] } };
  const loaded = rules.data.groups.flatMap((group) => group.rules);
  expect(loaded.length).toBeGreaterThanOrEqual(5);
  for (const rule of loaded) expect(rule.health, rule.name).not.toBe('err');
}, 30_000);
