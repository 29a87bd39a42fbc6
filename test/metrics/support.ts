/**
 * Flows the metrics tests drive against a listening authority, and a reader for the
 * Prometheus text exposition (prom-client writes it; it has no parser of its own).
 */
import { get } from 'node:http';
import { CLIENT_SECRET, USER_EMAIL, USER_PASSWORD } from '../support/app.js';

export interface FlowSecrets {
  /** Every secret the flows saw or sent: none may appear in /metrics. */
  readonly secrets: string[];
}

async function post(base: string, path: string, body: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(path, base), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * One of each: a client_credentials token, a login, a refresh, a replay of the rotated
 * refresh token (reuse, with REFRESH_REUSE_GRACE=0s), a wrong password, an unknown grant
 * type, the JWKS twice (200, then 304).
 */
export async function runFlows(base: string): Promise<FlowSecrets> {
  const basic = `Basic ${Buffer.from(`demo-service:${CLIENT_SECRET}`).toString('base64')}`;
  const cc = await post(base, '/oauth/token', { grant_type: 'client_credentials' }, { Authorization: basic });
  if (cc.status !== 200) throw new Error(`client_credentials: ${cc.status} ${JSON.stringify(cc.body)}`);
  const login = await post(base, '/auth/login', { email: USER_EMAIL, password: USER_PASSWORD });
  if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`);
  const first = String(login.body.refresh_token);
  const refreshed = await post(base, '/oauth/token', { grant_type: 'refresh_token', refresh_token: first, client_id: 'demo-app' });
  if (refreshed.status !== 200) throw new Error(`refresh: ${refreshed.status} ${JSON.stringify(refreshed.body)}`);
  const replay = await post(base, '/oauth/token', { grant_type: 'refresh_token', refresh_token: first, client_id: 'demo-app' });
  if (replay.status !== 400) throw new Error(`replay: ${replay.status} ${JSON.stringify(replay.body)}`);
  const wrong = await post(base, '/auth/login', { email: USER_EMAIL, password: 'not the password at all' });
  if (wrong.status !== 400) throw new Error(`wrong password: ${wrong.status}`);
  await post(base, '/oauth/token', { grant_type: 'urn:example:made-up' }, { Authorization: basic });
  const jwks = await httpGet(new URL('/.well-known/jwks.json', base));
  const revalidated = await httpGet(new URL('/.well-known/jwks.json', base), { 'If-None-Match': String(jwks.headers.etag) });
  if (revalidated.status !== 304) throw new Error(`JWKS revalidation: ${revalidated.status}`);
  const user = login.body.user as { id: string };
  return {
    secrets: [
      CLIENT_SECRET,
      USER_PASSWORD,
      'not the password at all',
      USER_EMAIL,
      user.id,
      String(cc.body.access_token),
      String(login.body.access_token),
      first,
      String(refreshed.body.refresh_token),
      String(refreshed.body.access_token),
    ],
  };
}

/** node:http, not fetch: fetch adds `Cache-Control: no-cache` to a conditional request, which forces a 200. */
function httpGet(url: URL, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders }>((resolve, reject) => {
    get(url, { headers }, (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    }).once('error', reject);
  });
}

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of a text exposition (format 0.0.4): `name{label="value",...} number`. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample with this name and (at least) these labels; 0 when there is none. */
export function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]?.value ?? 0;
}

export async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  return parseExposition(await res.text());
}
