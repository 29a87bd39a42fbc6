/**
 * GET /metrics on its own listener, after real flows against a listening authority with
 * its own Redis and MongoDB: the counters the issue lists move, labels stay bounded, and no
 * secret seen in the flows appears anywhere in the exposition.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRealServer, type RealServer } from '../support/real-server.js';
import { runFlows, scrape, valueOf, type FlowSecrets } from './support.js';
import { cryptoRandom } from '../../src/random.js';
import { createRefreshTokens } from '../../src/tokens/refresh-token.js';

let server: RealServer;
let base: string;
let metricsUrl: string;
let flows: FlowSecrets;

beforeAll(async () => {
  server = await startRealServer(inject('mongoUri'), 'metrics', { METRICS_PORT: '0', REFRESH_REUSE_GRACE: '0s', LOGIN_RATE_LIMIT: '3/15m' });
  base = server.issuer.origin;
  metricsUrl = server.running.metrics!.url;
  flows = await runFlows(base);
  // The flows end every session they start (reuse, logout): two live ones for the live-families gauge.
  const tokens = createRefreshTokens({ secret: 's'.repeat(40), random: cryptoRandom, families: server.running.service.stores.families });
  for (const subject of ['gauge-user-1', 'gauge-user-2']) await tokens.create({ subject, clientId: 'demo-app', scope: 'openid', audience: base }, {});
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

describe('the metrics listener', () => {
  it('serves the Prometheus text format on METRICS_HOST (loopback) and nothing else', async () => {
    expect(new URL(metricsUrl).hostname).toBe('127.0.0.1');
    const res = await fetch(metricsUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await fetch(new URL('/', metricsUrl))).status).toBe(404);
    expect((await fetch(metricsUrl, { method: 'POST' })).status).toBe(404);
  });

  it('is never on the public port: /metrics there is a 404 in the one JSON error format', async () => {
    const res = await fetch(new URL('/metrics', base));
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'not_found' });
    expect(new URL(metricsUrl).port).not.toBe(new URL(base).port);
  });
});

describe('after the flows', () => {
  it('counts tokens issued by grant and client, and refusals by grant and OAuth error code', async () => {
    const samples = await scrape(metricsUrl);
    expect(valueOf(samples, 'authority_tokens_issued_total', { grant: 'client_credentials', client: 'demo-service' })).toBe(1);
    expect(valueOf(samples, 'authority_tokens_issued_total', { grant: 'password', client: 'demo-app' })).toBe(1);
    expect(valueOf(samples, 'authority_tokens_issued_total', { grant: 'refresh_token', client: 'demo-app' })).toBe(1);
    expect(valueOf(samples, 'authority_token_requests_refused_total', { grant: 'refresh_token', error: 'invalid_grant' })).toBe(1);
    // A grant_type that is not ours is labelled `other`, never with what the caller sent.
    expect(valueOf(samples, 'authority_token_requests_refused_total', { grant: 'other', error: 'unsupported_grant_type' })).toBe(1);
    expect(valueOf(samples, 'authority_token_requests_refused_total', { grant: 'password', error: 'invalid_grant' })).toBe(1);
  });

  it('counts the rotation, the reuse and the family it revoked, and logins by outcome', async () => {
    const samples = await scrape(metricsUrl);
    expect(valueOf(samples, 'authority_refresh_rotations_total')).toBe(1);
    expect(valueOf(samples, 'authority_refresh_reuse_detected_total')).toBe(1);
    expect(valueOf(samples, 'authority_refresh_families_revoked_total', { reason: 'reuse' })).toBe(1);
    expect(valueOf(samples, 'authority_logins_total', { outcome: 'success' })).toBe(1);
    expect(valueOf(samples, 'authority_logins_total', { outcome: 'wrong_credentials' })).toBe(1);
  });

  it('times requests by route template, method and status class, and counts JWKS 200 and 304', async () => {
    const samples = await scrape(metricsUrl);
    expect(valueOf(samples, 'http_request_duration_seconds_count', { route: '/oauth/token', method: 'POST', status_class: '2xx' })).toBe(2);
    expect(valueOf(samples, 'http_request_duration_seconds_count', { route: '/oauth/token', method: 'POST', status_class: '4xx' })).toBe(2);
    expect(valueOf(samples, 'http_request_duration_seconds_count', { route: '/.well-known/jwks.json', method: 'GET', status_class: '3xx' })).toBe(1);
    expect(valueOf(samples, 'authority_jwks_requests_total', { status: '200' })).toBe(1);
    expect(valueOf(samples, 'authority_jwks_requests_total', { status: '304' })).toBe(1);
    const routes = new Set(samples.filter((s) => s.name === 'http_request_duration_seconds_count').map((s) => s.labels.route));
    for (const route of routes) expect(route === '(no route)' || route!.startsWith('/')).toBe(true);
  });

  it('reports signing time by algorithm, keys by state, the promotion wait, store latency and availability, live families, and process metrics', async () => {
    const samples = await scrape(metricsUrl);
    expect(valueOf(samples, 'authority_signing_duration_seconds_count', { alg: 'RS256' })).toBe(3);
    expect(valueOf(samples, 'authority_keys', { state: 'active' })).toBe(1);
    expect(valueOf(samples, 'authority_keys', { state: 'next' })).toBe(0);
    expect(valueOf(samples, 'authority_next_key_promotable_in_seconds')).toBe(-1);
    expect(valueOf(samples, 'authority_store_operation_duration_seconds_count', { store: 'families', operation: 'rotate' })).toBe(2);
    expect(valueOf(samples, 'authority_store_operation_duration_seconds_count', { store: 'users', operation: 'findCredentials' })).toBeGreaterThan(0);
    expect(valueOf(samples, 'authority_store_up', { store: 'redis' })).toBe(1);
    expect(valueOf(samples, 'authority_store_up', { store: 'mongodb' })).toBe(1);
    // Sampled from the family store (at most every 30 s): the flows' sessions, as the store counts them.
    expect(await server.running.service.stores.families.countLive()).toEqual({ count: 2, exact: true });
    expect(valueOf(samples, 'authority_refresh_families_live')).toBe(2);
    expect(valueOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_p99_seconds')).toBe(true);
  });

  it('counts which login limit throttled an attempt, registrations, password changes and the sessions they end', async () => {
    const email = 'metrics-user@example.com';
    const password = 'a long enough password 123';
    expect((await postJson('/auth/register', { email, password })).status).toBe(201);
    const login = await postJson('/auth/login', { email, password });
    const bearer = { Authorization: `Bearer ${String(login.body.access_token)}` };
    await postJson('/auth/login', { email, password }); // a second session, ended by the change
    expect((await postJson('/auth/password', { current_password: password, new_password: `${password} changed` }, bearer)).status).toBeLessThan(300);
    for (let attempt = 0; attempt < 4; attempt += 1) await postJson('/auth/login', { email, password: 'wrong wrong wrong' });
    const samples = await scrape(metricsUrl);
    expect(valueOf(samples, 'authority_registrations_total')).toBe(1);
    expect(valueOf(samples, 'authority_password_changes_total')).toBe(1);
    expect(valueOf(samples, 'authority_refresh_families_revoked_total', { reason: 'password_change' })).toBe(1);
    expect(valueOf(samples, 'authority_login_throttled_total', { limit: 'account_ip' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'authority_logins_total', { outcome: 'throttled' })).toBeGreaterThanOrEqual(1);
    await postJson('/auth/logout', {}, bearer);
    expect(valueOf(await scrape(metricsUrl), 'authority_refresh_families_revoked_total', { reason: 'logout' })).toBe(1);
  });

  it('holds no secret, token, email, user id or IP anywhere in the exposition', async () => {
    const text = await (await fetch(metricsUrl)).text();
    expect(flows.secrets.length).toBeGreaterThan(5);
    for (const secret of flows.secrets) {
      expect(secret.length).toBeGreaterThan(5);
      expect(text).not.toContain(secret);
    }
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toContain('@');
  });
});

async function postJson(path: string, body: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(path, base), { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}
