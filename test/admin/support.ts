/**
 * What the admin API tests share: a service on a real Redis (test/support) with an admin
 * client, and calls made as its callers make them.
 */
import request from 'supertest';
import { createClient } from '../../src/admin/accounts.js';
import { fromStreamFields } from '../../src/events/emitter.js';
import type { SecurityEvent } from '../../src/events/types.js';
import { cryptoRandom } from '../../src/random.js';
import { startTestService, type TestService } from '../support/app.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** An admin client (`admin` permission and scope, client_credentials) in `service`'s store; its secret. */
export async function createAdminClient(service: TestService, clientId: string): Promise<string> {
  const { clientSecret } = await createClient(
    { clients: service.stores.clients, random: cryptoRandom },
    {
      name: `Admin ${clientId}`,
      clientId,
      grants: ['client_credentials'],
      scopes: ['admin'],
      audiences: [],
      permissions: ['admin'],
      public: false,
      firstParty: false,
      cookieMode: false,
    },
  );
  return clientSecret!;
}

export interface AdminHarness {
  readonly service: TestService;
  readonly redis: TestRedis;
  readonly adminSecret: string;
  /** A fresh admin access token. */
  token(): Promise<string>;
  /** A request with the admin token obtained at start. */
  api(method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string): request.Test;
  /** The security events so far (flushed first). */
  events(): Promise<SecurityEvent[]>;
  close(): Promise<void>;
}

export async function startAdminHarness(env: Record<string, string> = {}): Promise<AdminHarness> {
  const redis = await startTestRedis();
  const service = await startTestService({ REDIS_URL: redis.url, ...env });
  const clientSecret = await createAdminClient(service, 'test-admin');
  const adminSecret = clientSecret!;
  const token = async () => {
    const res = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', basic('test-admin', adminSecret))
      .type('form')
      .send({ grant_type: 'client_credentials', scope: 'admin' })
      .expect(200);
    return res.body.access_token as string;
  };
  const adminToken = await token();
  return {
    service,
    redis,
    adminSecret,
    token,
    api: (method, path) => request(service.callback)[method](path).set('Authorization', `Bearer ${adminToken}`),
    async events() {
      await service.events.flush();
      const entries = await service.stores.events.recent(10_000);
      return entries.map((entry) => fromStreamFields(entry.fields)).filter((event): event is SecurityEvent => event !== undefined);
    },
    async close() {
      await service.close();
      await redis.stop();
    },
  };
}
