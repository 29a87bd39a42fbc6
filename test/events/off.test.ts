/**
 * SECURITY_EVENTS=off with METRICS_PORT off: the service without issue 19's
 * instrumentation, which the bench compares against the service with it. Logins, a wrong
 * password and a refresh leave no stream entry and no 'security event' log line.
 */
import request from 'supertest';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';

let service: TestService;

beforeAll(async () => {
  service = await startTestService({ SECURITY_EVENTS: 'off', METRICS_PORT: 'off' });
});
afterAll(() => service?.close());

it('records no security event and builds no metrics', async () => {
  const login = await request(service.callback).post('/auth/login').send({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200);
  await request(service.callback).post('/auth/login').send({ email: USER_EMAIL, password: 'not the password at all' }).expect(400);
  await request(service.callback).post('/auth/refresh').send({ refresh_token: login.body.refresh_token }).expect(200);
  await service.events.flush();
  expect(await service.stores.events.recent(100)).toEqual([]);
  expect(service.metrics).toBeUndefined();
  const lines = service.logs.entries();
  expect(lines.some((line) => line.msg === 'request')).toBe(true);
  expect(lines.filter((line) => line.msg === 'security event')).toEqual([]);
  expect(lines.some((line) => String(line.msg).startsWith('SECURITY_EVENTS=off'))).toBe(true);
});
