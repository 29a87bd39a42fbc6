/**
 * The user cache across two running authorities that share Redis and a MongoDB database
 * (issue 18 item 2): a change made on one reaches the other's cache through Redis pub/sub
 * before its next refresh. The latency from the change on one to the other dropping its
 * cached record is measured and printed.
 */
import { performance } from 'node:perf_hooks';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { USER_EMAIL, USER_PASSWORD } from '../support/app.js';
import { testDatabaseUri } from '../support/mongo.js';
import { startRealServer, type RealServer } from '../support/real-server.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let a: RealServer;
let b: RealServer;

beforeAll(async () => {
  redis = await startTestRedis();
  // One database and one AUDIENCE: a family granted on one must be refreshable on the other.
  const env = { REDIS_URL: redis.url, MONGODB_URI: testDatabaseUri(inject('mongoUri'), 'user-cache'), AUDIENCE: 'https://api.example.test' };
  a = await startRealServer(inject('mongoUri'), 'user-cache', env);
  b = await startRealServer(inject('mongoUri'), 'user-cache', env);
}, 30_000);

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await redis?.stop();
});

async function token(server: RealServer, body: Record<string, string>) {
  const response = await fetch(new URL('/oauth/token', server.issuer), { method: 'POST', body: new URLSearchParams({ client_id: 'demo-app', ...body }) });
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

/** Milliseconds from calling `change` on `a` to `b`'s feed delivering it. */
async function timedChange(userId: string, change: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  const delivered = new Promise<number>((resolve) => {
    b.running.service.stores.userChanges.subscribe({ changed: (id) => id === userId && resolve(performance.now()), reset: () => undefined });
  });
  await change();
  return (await delivered) - start;
}

describe('user cache across two instances sharing Redis', () => {
  it('a role change on one is in the next refresh on the other; disabling on one makes the next refresh on the other fail', async () => {
    const login = await token(a, { grant_type: 'password', username: USER_EMAIL, password: USER_PASSWORD });
    expect(login.status).toBe(200);
    const userId = decodeJwt(login.body.access_token!).sub!;
    // A first refresh on b fills b's cache with the user as it is.
    const first = await token(b, { grant_type: 'refresh_token', refresh_token: login.body.refresh_token! });
    expect(first.status).toBe(200);
    expect(decodeJwt(first.body.access_token!).roles).toEqual(['admin']);
    expect(b.running.service.stores.userChanges.live()).toBe(true);

    const roleLatency = await timedChange(userId, () => a.running.service.stores.users.update(userId, { roles: ['admin', 'auditor'] }));
    const second = await token(b, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token! });
    expect(second.status).toBe(200);
    expect(decodeJwt(second.body.access_token!).roles).toEqual(['admin', 'auditor']);

    const disableLatency = await timedChange(userId, () => a.running.service.stores.users.update(userId, { disabled: true }));
    const third = await token(b, { grant_type: 'refresh_token', refresh_token: second.body.refresh_token! });
    expect(third).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    // Ten more changes, for a median: from the call on one instance (a MongoDB write, then PUBLISH) to the other's feed.
    const more: number[] = [];
    for (let index = 0; index < 10; index += 1) {
      more.push(await timedChange(userId, () => a.running.service.stores.users.update(userId, { roles: ['admin', `r${index}`] })));
    }
    const sorted = [...more].sort((x, y) => x - y);
    console.log(
      `user cache invalidation latency across instances: role change ${roleLatency.toFixed(1)} ms, disable ${disableLatency.toFixed(1)} ms, ` +
        `10 more: median ${sorted[5]!.toFixed(1)} ms, max ${sorted[9]!.toFixed(1)} ms`,
    );
    // The target is under 100 ms; the bound leaves room for a loaded CI machine, the number is printed.
    expect(roleLatency).toBeLessThan(1000);
    expect(disableLatency).toBeLessThan(1000);
    await a.running.service.stores.users.update(userId, { disabled: false, roles: ['admin'] });
  });
});
