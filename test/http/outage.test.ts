/**
 * Redis goes away under the HTTP API: refresh and revocation fail closed with 503
 * `temporarily_unavailable` in the JSON format, nothing "succeeds" unrecorded, and after
 * Redis returns the very token presented during the outage still rotates.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';
import { expectOAuthError, passwordLogin, refreshGrant } from '../support/http.js';
import { freePort, stopProcess, waitFor } from '../support/processes.js';
import { startRedisServer } from '../support/redis.js';

let port: number;
let dir: string;
let redis: ChildProcess | undefined;
let service: TestService;
// Append-only with fsync on every write, so data survives the restart as in production.
const durable = () => ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir];

beforeAll(async () => {
  port = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'outage-redis-'));
  redis = await startRedisServer(port, durable());
  service = await startTestService({ REDIS_URL: `redis://127.0.0.1:${port}` });
});
afterAll(async () => {
  await service?.close();
  if (redis) await stopProcess(redis);
  rmSync(dir, { recursive: true, force: true });
});

describe('Redis outage', () => {
  it('answers refresh and revoke with 503 while Redis is down, and recovers with no half-rotated family', async () => {
    const login = (await passwordLogin(service).expect(200)).body;
    const rotated = (await refreshGrant(service, login.refresh_token).expect(200)).body;

    await stopProcess(redis!);
    redis = undefined;
    const refresh = await refreshGrant(service, rotated.refresh_token);
    expectOAuthError(refresh, 503, 'temporarily_unavailable');
    expect(refresh.headers['retry-after']).toBe('1');
    expectOAuthError(
      await request(service.callback).post('/oauth/revoke').type('form').send({ token: rotated.refresh_token, client_id: 'demo-app' }),
      503,
      'temporarily_unavailable',
    );
    expectOAuthError(await passwordLogin(service), 503, 'temporarily_unavailable');
    expect((await request(service.callback).get('/readyz')).status).toBe(503);
    const failure = service.logs.entries().find((entry) => entry.code === 'temporarily_unavailable');
    expect(failure).toMatchObject({ level: 'error', detail: expect.stringContaining('unavailable') });
    // The root cause, by name and message, not a "[circular]" chain.
    expect(failure?.rootCause).toMatchObject({ name: expect.any(String), message: expect.any(String) });
    expect((failure?.rootCause as { name: string }).name).not.toBe('StoreUnavailableError');

    redis = await startRedisServer(port, durable());
    await waitFor(async () => (await request(service.callback).get('/readyz')).status === 200, 15_000, 100);
    // The token presented during the outage was never consumed: it rotates now, once.
    const after = (await refreshGrant(service, rotated.refresh_token).expect(200)).body;
    await refreshGrant(service, after.refresh_token).expect(200);
  });
});
