/**
 * Security headers, CORS, input limits and slow clients, on representative endpoints.
 */
import { connect } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/main.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { expectOAuthError } from '../support/http.js';
import { captureLogs } from '../support/logs.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ALLOWED = 'https://app.example.test';
let service: TestService;
let https: TestService;

beforeAll(async () => {
  service = await startTestService({ CORS_ORIGINS: ALLOWED });
  https = await startTestService({ ISSUER: 'https://auth.example.test' });
});
afterAll(async () => {
  await service?.close();
  await https?.close();
});

function expectSecurityHeaders(headers: Record<string, string>): void {
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['referrer-policy']).toBe('no-referrer');
  expect(headers['x-frame-options']).toBe('DENY');
  expect(headers['content-security-policy']).toContain("default-src 'none'");
  expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
  expect(headers['x-powered-by']).toBeUndefined();
  // helmet's HTML-only headers are turned off: every response is JSON.
  for (const name of [
    'cross-origin-opener-policy',
    'origin-agent-cluster',
    'x-dns-prefetch-control',
    'x-download-options',
    'x-permitted-cross-domain-policies',
    'x-xss-protection',
  ]) {
    expect(headers[name]).toBeUndefined();
  }
}

describe('security headers', () => {
  it('are on successes and errors alike', async () => {
    const responses = [
      await request(service.callback).get('/healthz'),
      await request(service.callback).get('/.well-known/jwks.json'),
      await request(service.callback).post('/oauth/token').type('form').send({ grant_type: 'client_credentials' }),
      await request(service.callback).get('/nowhere'),
      await request(service.callback).post('/auth/login').set('Content-Type', 'application/json').send('{bad'),
    ];
    for (const res of responses) expectSecurityHeaders(res.headers as Record<string, string>);
    expect(responses[0]!.headers['strict-transport-security']).toBeUndefined();
  });

  it('include HSTS when the issuer is https, on the public documents too', async () => {
    for (const path of ['/healthz', '/.well-known/jwks.json', '/.well-known/oauth-authorization-server']) {
      const res = await request(https.callback).get(path).expect(200);
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expectSecurityHeaders(res.headers as Record<string, string>);
    }
  });
});

describe('CORS', () => {
  it('answers a preflight from an allowed origin with credentials allowed', async () => {
    const res = await request(service.callback)
      .options('/auth/refresh')
      .set('Origin', ALLOWED)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'content-type');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(res.headers['access-control-allow-methods']).toContain('POST');
    expect(res.headers.vary).toMatch(/Origin/);
  });

  it('gives a disallowed origin no CORS headers at all', async () => {
    const preflight = await request(service.callback).options('/auth/refresh').set('Origin', 'https://evil.test').set('Access-Control-Request-Method', 'POST');
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
    const simple = await request(service.callback).get('/healthz').set('Origin', 'https://evil.test');
    expect(simple.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('serves the JWKS and metadata to any origin, without credentials', async () => {
    for (const path of ['/.well-known/jwks.json', '/.well-known/oauth-authorization-server']) {
      const res = await request(service.callback).get(path).set('Origin', 'https://anyone.test').expect(200);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
      expect(res.headers['cross-origin-resource-policy']).toBe('cross-origin');
      // The same answer for every origin: nothing for a shared cache to vary on.
      expect(res.headers.vary).toBeUndefined();
    }
  });
});

describe('input limits', () => {
  it('refuses deeply nested JSON and too many parameters with 400', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 50; i += 1) deep = { a: deep };
    expectOAuthError(await request(service.callback).post('/auth/login').send({ email: deep, password: 'x' }), 400, 'invalid_request');
    const form = Array.from({ length: 150 }, (_, i) => `p${i}=1`).join('&');
    expectOAuthError(await request(service.callback).post('/oauth/token').type('form').send(form), 400, 'invalid_request');
    const json = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p${i}`, 1]));
    expectOAuthError(await request(service.callback).post('/auth/login').send(json), 400, 'invalid_request');
  });

  it('counts the parameters of a JSON body as of a form: too many is refused even when the request is otherwise valid', async () => {
    const json = { email: USER_EMAIL, password: USER_PASSWORD, ...Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p${i}`, 1])) };
    const res = await request(service.callback).post('/auth/login').send(json);
    expectOAuthError(res, 400, 'invalid_request');
    expect(res.body.error_description).toMatch(/too many parameters/);
  });
});

describe('the real server against hostile connections', () => {
  let running: RunningServer;
  let keysDir: string;
  let port: number;
  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'limits-keys-'));
    const config = parseConfig({
      NODE_ENV: 'test',
      PORT: '0',
      KEYS_DIR: keysDir,
      HTTP_HEADERS_TIMEOUT: '1s',
      HTTP_REQUEST_TIMEOUT: '2s',
      ARGON2_MEMORY_KIB: '8192',
      ARGON2_TIME_COST: '1',
    });
    running = await startServer(config, { logger: captureLogs().logger });
    port = Number(new URL(running.url).port);
  });
  afterAll(async () => {
    await running?.stop();
    rmSync(keysDir, { recursive: true, force: true });
  });

  function rawExchange(write: (socket: ReturnType<typeof connect>) => void): Promise<{ response: string; closedAfterMs: number }> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const socket = connect(port, '127.0.0.1');
      let response = '';
      socket.on('data', (chunk) => (response += chunk.toString()));
      socket.on('error', reject);
      socket.on('close', () => resolve({ response, closedAfterMs: Date.now() - started }));
      socket.on('connect', () => write(socket));
      setTimeout(() => socket.destroy(), 8000);
    });
  }

  it('answers oversized headers with 431 in the JSON error format', async () => {
    const { response } = await rawExchange((socket) => socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(response).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))).toEqual({ error: 'invalid_request', error_description: 'request headers too large' });
  });

  it('cuts off a slow-loris client that never finishes its headers', async () => {
    const { response, closedAfterMs } = await rawExchange((socket) => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      const drip = setInterval(() => socket.writable && socket.write('X-Drip: 1\r\n'), 200);
      socket.on('close', () => clearInterval(drip));
    });
    expect(closedAfterMs).toBeLessThan(5000);
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('answers garbage on the wire with a JSON 400', async () => {
    const { response } = await rawExchange((socket) => socket.write('THIS IS NOT HTTP\r\n\r\n'));
    expect(response).toMatch(/^HTTP\/1\.1 400 /);
    expect(response).toContain('"error":"invalid_request"');
  });
});
