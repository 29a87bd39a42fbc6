/**
 * REFRESH_FAMILIES_PER_USER: a login over the cap ends the user's oldest session, and
 * says so like every other way a session ends: a `family.revoked` event (reason
 * `session_cap`) naming the family, counted by the families-revoked metric.
 */
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SecurityEvent } from '../../src/events/types.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { parseExposition, valueOf } from '../metrics/support.js';

let service: TestService;

beforeAll(async () => {
  service = await startTestService({ REFRESH_FAMILIES_PER_USER: '2', METRICS_PORT: '0' });
});
afterAll(() => service?.close());

async function login(): Promise<{ refreshToken: string; userId: string }> {
  const res = await request(service.callback).post('/auth/login').send({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200);
  return { refreshToken: res.body.refresh_token as string, userId: res.body.user.id as string };
}

async function events(): Promise<SecurityEvent[]> {
  await service.events.flush();
  return (await service.stores.events.recent(1000)).map((entry) => JSON.parse(entry.fields!.event!) as SecurityEvent);
}

it('a login over the cap ends the oldest session with a family.revoked event (session_cap), counted by reason', async () => {
  const first = await login();
  await login();
  expect((await events()).filter((event) => event.type === 'family.revoked')).toEqual([]);
  await login();
  const revoked = (await events()).filter((event) => event.type === 'family.revoked');
  const oldest = first.refreshToken.split('.')[0]!;
  expect(revoked).toHaveLength(1);
  expect(revoked[0]).toMatchObject({
    actor: { type: 'user', id: first.userId },
    subject: { type: 'family', id: oldest },
    data: { reason: 'session_cap', count: 1, user_id: first.userId },
  });
  // It is really ended: its refresh token no longer works.
  await request(service.callback).post('/auth/refresh').send({ refresh_token: first.refreshToken }).expect(400);
  const samples = parseExposition(await service.metrics!.registry.metrics());
  expect(valueOf(samples, 'authority_refresh_families_revoked_total', { reason: 'session_cap' })).toBe(1);
});
