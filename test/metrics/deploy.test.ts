/**
 * The alert rules and the Grafana dashboard: promtool accepts the rules and the compose
 * Prometheus config, and every metric (and label) they name is one /metrics exports.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Metrics } from '../../src/metrics/metrics.js';
import { startTestService, type TestService } from '../support/app.js';

const ROOT = join(import.meta.dirname, '..', '..');
const ALERTS = join(ROOT, 'deploy', 'prometheus', 'alerts.yml');
const PROMTOOL = '/usr/bin/promtool';

interface Rule {
  alert: string;
  expr: string;
  annotations: { summary: string; description: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string }[];
}

const rules = (parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((group) => group.rules);
const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'token-authority.json'), 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query: unknown }[] };
};

let service: TestService;
let metrics: Metrics;
/** Exported series names (histograms with their _bucket, _sum, _count) → label names. */
const exported = new Map<string, Set<string>>();

beforeAll(async () => {
  service = await startTestService({ METRICS_PORT: '0' });
  metrics = service.metrics!;
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    const { name, type } = metric;
    const labelNames = new Set<string>((metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] }).labelNames ?? []);
    for (const value of metric.values) for (const label of Object.keys(value.labels)) labelNames.add(label);
    const names = String(type) === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
    for (const series of names) exported.set(series, labelNames);
  }
});

afterAll(async () => {
  await service?.close();
});

/** Every `metric{label=...}` or bare metric name in a PromQL expression that looks like one of ours or a default. */
function namesIn(expr: string): { name: string; labels: string[] }[] {
  const found: { name: string; labels: string[] }[] = [];
  for (const match of expr.matchAll(/\b((?:authority|http|process|nodejs)_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(match[3] ?? '').matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!);
    found.push({ name: match[1]!, labels });
  }
  return found;
}

function expectExported(where: string, expr: string): void {
  const names = namesIn(expr);
  expect(names.length, `${where}: no metric found in ${expr}`).toBeGreaterThan(0);
  for (const { name, labels } of names) {
    expect(exported.has(name), `${where}: ${name} is not exported by /metrics`).toBe(true);
    for (const label of labels) {
      if (label === 'job' || label === 'instance' || label === 'le') continue;
      expect(exported.get(name)!.has(label), `${where}: ${name} has no label ${label}`).toBe(true);
    }
  }
}

describe('deploy/prometheus/alerts.yml', () => {
  it('passes promtool check rules, and the compose Prometheus config passes promtool check config', () => {
    if (!existsSync(PROMTOOL)) {
      console.warn(`\n*** ${PROMTOOL} is missing: the alert rules are NOT checked by promtool (apt-get install prometheus) ***\n`);
      return;
    }
    expect(execFileSync(PROMTOOL, ['check', 'rules', ALERTS], { encoding: 'utf8' })).toContain(`SUCCESS: ${rules.length} rules found`);
    execFileSync(PROMTOOL, ['check', 'config', '--syntax-only', join(ROOT, 'deploy', 'prometheus', 'prometheus.yml')], { encoding: 'utf8' });
  });

  it('has the five alerts the issue asks for, and one for a key directory the instance cannot reload (issue 23 item 8), each with a summary and what to look at', () => {
    expect(rules.map((rule) => rule.alert)).toEqual([
      'RefreshTokenReuseDetected',
      'LoginFailureRatioHigh',
      'StoreUnavailable',
      'NoNextSigningKeyPublished',
      'KeyDirectoryNotFollowed',
      'TokenEndpointLatencyHigh',
    ]);
    for (const rule of rules) expect(rule.annotations.summary && rule.annotations.description, rule.alert).toBeTruthy();
  });

  it('uses only metrics and labels that /metrics exports', () => {
    expect(exported.has('authority_refresh_reuse_detected_total')).toBe(true);
    for (const rule of rules) expectExported(rule.alert, rule.expr);
  });
});

describe('deploy/grafana/token-authority.json', () => {
  it('queries only metrics and labels that /metrics exports', () => {
    const targets = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => [panel.title, target.expr] as const));
    expect(targets.length).toBeGreaterThan(15);
    for (const [title, expr] of targets) expectExported(title, expr);
    expectExported('the job variable', JSON.stringify(dashboard.templating.list.find((variable) => variable.name === 'job')!.query));
  });

  it('has unique panel ids, a data source variable on every query panel, and a fixed uid', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
    expect(dashboard.uid).toBe('token-authority');
  });

  it('shows every metric of ours that the issue lists', () => {
    const used = new Set(dashboard.panels.flatMap((panel) => (panel.targets ?? []).flatMap((target) => namesIn(target.expr).map((n) => n.name))));
    const ours = [...exported.keys()].filter((name) => name.startsWith('authority_') && !name.endsWith('_sum') && !name.endsWith('_count'));
    for (const name of ours) {
      const histogram = exported.has(`${name.replace(/_bucket$/, '')}_count`);
      if (histogram && !name.endsWith('_bucket')) continue;
      expect(used.has(name), `${name} is on no panel`).toBe(true);
    }
  });
});
