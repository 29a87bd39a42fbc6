/**
 * Every admin API endpoint from the caller's side (issue 22 item 1), on a real Redis: what
 * each answers, that a change takes effect at once despite the client and user caches,
 * that sessions end through the session service (events), and that every call is audited.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cryptoRandom } from '../../src/random.js';
import { createRefreshTokens } from '../../src/tokens/refresh-token.js';
import { introspect } from '../support/http.js';
import { waitFor } from '../support/processes.js';
import { basic, startAdminHarness, type AdminHarness } from './support.js';

let h: AdminHarness;

beforeAll(async () => {
  h = await startAdminHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const http = () => request(h.service.callback);
const clientToken = (id: string, secret: string, scope?: string) =>
  http()
    .post('/oauth/token')
    .set('Authorization', basic(id, secret))
    .type('form')
    .send({ grant_type: 'client_credentials', ...(scope && { scope }) });
const login = (email: string, password: string) => http().post('/auth/login').send({ email, password });
const refresh = (refreshToken: string) => http().post('/auth/refresh').send({ refresh_token: refreshToken });

async function newClient(body: Record<string, unknown>): Promise<{ id: string; secret: string | undefined }> {
  const res = await h.api('post', '/admin/clients').send(body).expect(201);
  return { id: res.body.client.client_id as string, secret: res.body.client_secret as string | undefined };
}

let userCount = 0;
async function newUser(prefix = 'user'): Promise<{ id: string; email: string; password: string }> {
  userCount += 1;
  const email = `${prefix}${userCount}@example.org`;
  const password = `a long user password ${userCount} zq`;
  const res = await h.api('post', '/admin/users').send({ email, password }).expect(201);
  return { id: res.body.user.id as string, email, password };
}

/** Every route but the document, with ids that exist or not: only the caller differs. */
const ROUTES: [method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string][] = [
  ['get', '/admin/clients'],
  ['post', '/admin/clients'],
  ['get', '/admin/clients/demo-app'],
  ['patch', '/admin/clients/demo-app'],
  ['delete', '/admin/clients/demo-app'],
  ['post', '/admin/clients/demo-service/secret'],
  ['get', '/admin/users'],
  ['post', '/admin/users'],
  ['get', '/admin/users/x'],
  ['delete', '/admin/users/x'],
  ['put', '/admin/users/x/roles'],
  ['post', '/admin/users/x/disable'],
  ['post', '/admin/users/x/enable'],
  ['get', '/admin/users/x/sessions'],
  ['delete', '/admin/users/x/sessions'],
  ['delete', '/admin/users/x/sessions/y'],
  ['get', '/admin/keys'],
];

describe('who may call', () => {
  it('refuses every route without a token (401), with a user’s token or a non-admin client’s token (403)', async () => {
    const user = await newUser();
    const userToken = (await login(user.email, user.password).expect(200)).body.access_token as string;
    const serviceToken = (
      await http().post('/oauth/token').set('Authorization', h.service.basic).type('form').send({ grant_type: 'client_credentials' }).expect(200)
    ).body.access_token as string;
    for (const [method, path] of ROUTES) {
      const none = await http()[method](path).send({});
      expect({ route: `${method} ${path}`, status: none.status, error: none.body.error }).toEqual({
        route: `${method} ${path}`,
        status: 401,
        error: 'invalid_token',
      });
      for (const bearer of [userToken, serviceToken]) {
        const res = await http()[method](path).set('Authorization', `Bearer ${bearer}`).send({});
        expect({ route: `${method} ${path}`, status: res.status, error: res.body.error }).toEqual({
          route: `${method} ${path}`,
          status: 403,
          error: 'insufficient_scope',
        });
      }
    }
    // Nothing was changed by the refused calls.
    expect((await h.api('get', '/admin/clients/demo-app').expect(200)).body.client.client_id).toBe('demo-app');
  }, 30_000);

  it('serves the OpenAPI document without a token', async () => {
    const res = await http().get('/admin/openapi.json').expect(200);
    expect(res.body.openapi).toBe('3.1.0');
  });
});

describe('clients', () => {
  it('lists every client once, in pages, following next_cursor', async () => {
    for (let i = 0; i < 5; i++) await newClient({ name: `paged ${i}`, client_id: `paged-${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await h.api('get', `/admin/clients?limit=2${cursor ? `&cursor=${cursor}` : ''}`).expect(200);
      expect(res.body.clients.length).toBeLessThanOrEqual(2);
      expect(JSON.stringify(res.body)).not.toMatch(/secret/i);
      seen.push(...res.body.clients.map((client: { client_id: string }) => client.client_id));
      cursor = res.body.next_cursor;
      pages += 1;
    } while (cursor !== null && pages < 50);
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(['demo-app', 'demo-service', 'test-admin', 'paged-0', 'paged-4']));
    const all = await h.api('get', '/admin/clients?limit=200').expect(200);
    expect(all.body.clients.map((client: { client_id: string }) => client.client_id)).toEqual(seen);
    expect(all.body.next_cursor).toBeNull();
  });

  it('answers bad paging with 400 in the JSON error format', async () => {
    for (const query of ['limit=0', 'limit=201', 'limit=abc', 'cursor=not%20a%20cursor', 'cursor=@@', 'limit=1&limit=2']) {
      const res = await h.api('get', `/admin/clients?${query}`);
      expect({ query, status: res.status, body: res.body }).toEqual({
        query,
        status: 400,
        body: { error: 'invalid_request', error_description: expect.any(String) },
      });
    }
  });

  it('updates scopes and grants: the change holds at the token endpoint at once, despite the client cache', async () => {
    const { id, secret } = await newClient({ name: 'Reports', grant_types: ['client_credentials'], scopes: ['read'] });
    // Warm the cache with the old record.
    await clientToken(id, secret!, 'read').expect(200);
    expect((await clientToken(id, secret!, 'write').expect(400)).body.error).toBe('invalid_scope');
    const res = await h
      .api('patch', `/admin/clients/${id}`)
      .send({ scopes: ['write'], name: 'Reports v2', audiences: ['https://api.example.org'] })
      .expect(200);
    expect(res.body.client).toMatchObject({
      client_id: id,
      name: 'Reports v2',
      scopes: ['write'],
      audiences: ['https://api.example.org'],
      grant_types: ['client_credentials'],
    });
    await clientToken(id, secret!, 'write').expect(200);
    expect((await clientToken(id, secret!, 'read').expect(400)).body.error).toBe('invalid_scope');
    expect((await h.api('get', `/admin/clients/${id}`).expect(200)).body.client.scopes).toEqual(['write']);
  });

  it('validates an update exactly as creation does, and changes nothing when refused', async () => {
    const { id } = await newClient({
      name: 'Spa',
      public: true,
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: ['https://spa.example.org/cb'],
    });
    const creation = await h
      .api('post', '/admin/clients')
      .send({ name: 'x', public: true, grant_types: ['client_credentials'] })
      .expect(400);
    const update = await h
      .api('patch', `/admin/clients/${id}`)
      .send({ grant_types: ['client_credentials'] })
      .expect(400);
    expect(update.body).toEqual(creation.body);
    const cases: Record<string, unknown>[] = [
      { redirect_uris: ['not a uri'] },
      { redirect_uris: ['https://spa.example.org/cb#fragment'] },
      { grant_types: ['bogus'] },
      { grant_types: [] },
      { audiences: ['ftp://x'] },
      { name: '' },
      { name: 7 },
      { permissions: ['admin'] },
      { public: false },
      {},
      { scopes: 'read' },
    ];
    for (const body of cases) {
      const res = await h.api('patch', `/admin/clients/${id}`).send(body);
      expect({ body, status: res.status, error: res.body.error }).toEqual({ body, status: 400, error: 'invalid_request' });
    }
    const after = (await h.api('get', `/admin/clients/${id}`).expect(200)).body.client;
    expect(after).toMatchObject({
      name: 'Spa',
      type: 'public',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: ['https://spa.example.org/cb'],
    });
    await h
      .api('patch', `/admin/clients/${id}`)
      .send({
        redirect_uris: ['https://spa.example.org/new'],
        post_logout_redirect_uris: ['https://spa.example.org/bye'],
        require_par: true,
        first_party: false,
      })
      .expect(200);
    expect((await h.api('get', `/admin/clients/${id}`).expect(200)).body.client).toMatchObject({
      redirect_uris: ['https://spa.example.org/new'],
      post_logout_redirect_uris: ['https://spa.example.org/bye'],
      require_par: true,
    });
    expect((await h.api('patch', '/admin/clients/no-such-client').send({ name: 'x' }).expect(404)).body.error).toBe('not_found');
  });

  it('rotates a confidential client’s secret: answered once, the old one fails at once', async () => {
    const { id, secret: old } = await newClient({ name: 'Rotated', grant_types: ['client_credentials'] });
    await clientToken(id, old!).expect(200);
    const res = await h.api('post', `/admin/clients/${id}/secret`).expect(200);
    const fresh = res.body.client_secret as string;
    expect(fresh).toMatch(/^\S{32,}$/);
    expect(fresh).not.toBe(old);
    expect(res.headers['cache-control']).toBe('no-store');
    expect((await clientToken(id, old!).expect(401)).body.error).toBe('invalid_client');
    await clientToken(id, fresh).expect(200);
    expect(JSON.stringify((await h.api('get', `/admin/clients/${id}`).expect(200)).body)).not.toContain(fresh);
    expect(h.service.logs.text()).not.toContain(fresh);
    expect(JSON.stringify(await h.events())).not.toContain(fresh);
    // A public client has none; an unknown one is a 404.
    expect((await h.api('post', '/admin/clients/demo-app/secret').expect(400)).body.error).toBe('invalid_request');
    expect((await h.api('post', '/admin/clients/nobody/secret').expect(404)).body.error).toBe('not_found');
  });

  it('deletes a client: its refresh families end, its secret stops working at once, it is gone', async () => {
    const { id } = await newClient({ name: 'App', public: true, first_party: true, grant_types: ['password', 'refresh_token'] });
    const user = await newUser();
    const session = await http().post('/auth/login').send({ email: user.email, password: user.password, client_id: id }).expect(200);
    await refresh(session.body.refresh_token)
      .expect(200)
      .then((res) => (session.body.refresh_token = res.body.refresh_token));
    const { id: serviceId, secret } = await newClient({ name: 'Doomed service', grant_types: ['client_credentials'] });
    await clientToken(serviceId, secret!).expect(200);

    const deleted = await h.api('delete', `/admin/clients/${id}`).expect(200);
    expect(deleted.body).toEqual({ deleted: true, sessions_ended: 1 });
    expect((await refresh(session.body.refresh_token)).status).toBeGreaterThanOrEqual(400);
    expect((await introspect(h.service, session.body.access_token).expect(200)).body.active).toBe(false);
    expect((await h.api('get', `/admin/users/${user.id}/sessions`).expect(200)).body.sessions).toEqual([]);
    expect((await h.api('get', `/admin/clients/${id}`).expect(404)).body.error).toBe('not_found');

    await h.api('delete', `/admin/clients/${serviceId}`).expect(200);
    expect((await clientToken(serviceId, secret!).expect(401)).body.error).toBe('invalid_client');
    expect((await h.api('delete', `/admin/clients/${serviceId}`).expect(404)).body.error).toBe('not_found');
    // The admin client cannot delete itself.
    expect((await h.api('delete', '/admin/clients/test-admin').expect(400)).body.error).toBe('invalid_request');
    const events = await h.events();
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'family.revoked',
        actor: expect.objectContaining({ type: 'client', id: 'test-admin' }),
        data: expect.objectContaining({ reason: 'client_deleted', client_id: id }),
      }),
    );
  });
});

describe('users', () => {
  it('lists users by email prefix, in pages, and shows one', async () => {
    for (let i = 0; i < 5; i++) await newUser('prefixed');
    await newUser('other');
    const seen: { id: string; email: string }[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await h.api('get', `/admin/users?email_prefix=PREFIXED&limit=2${cursor ? `&cursor=${cursor}` : ''}`).expect(200);
      seen.push(...res.body.users);
      cursor = res.body.next_cursor;
    } while (cursor !== null && seen.length < 50);
    expect(seen).toHaveLength(5);
    expect(seen.every((user) => user.email.startsWith('prefixed'))).toBe(true);
    expect(seen.map((user) => user.email)).toEqual(seen.map((user) => user.email).sort());
    expect(JSON.stringify(seen)).not.toMatch(/password|hash/i);
    const one = await h.api('get', `/admin/users/${seen[0]!.id}`).expect(200);
    expect(one.body.user).toMatchObject({ id: seen[0]!.id, email: seen[0]!.email, disabled: false, roles: [] });
    expect((await h.api('get', '/admin/users?email_prefix=nobody-has-this').expect(200)).body).toEqual({ users: [], next_cursor: null });
    expect((await h.api('get', '/admin/users/000000000000000000000000').expect(404)).body.error).toBe('not_found');
    expect((await h.api('get', '/admin/users/not-an-id').expect(404)).body.error).toBe('not_found');
  });

  it('sets roles: the next token carries them; bad roles are a 400', async () => {
    const user = await newUser();
    const res = await h
      .api('put', `/admin/users/${user.id}/roles`)
      .send({ roles: ['support', 'billing', 'support'] })
      .expect(200);
    expect(res.body.user.roles).toEqual(['support', 'billing']);
    const at = (await login(user.email, user.password).expect(200)).body.access_token as string;
    expect(JSON.parse(Buffer.from(at.split('.')[1]!, 'base64url').toString()).roles).toEqual(['support', 'billing']);
    for (const body of [{ roles: ['bad role'] }, { roles: 'admin' }, {}, { roles: [''] }]) {
      const bad = await h.api('put', `/admin/users/${user.id}/roles`).send(body);
      expect({ body, status: bad.status, error: bad.body.error }).toEqual({ body, status: 400, error: 'invalid_request' });
    }
    expect((await h.api('put', '/admin/users/000000000000000000000000/roles').send({ roles: [] }).expect(404)).body.error).toBe('not_found');
  });

  it('disables a user: refresh fails, the access token introspects inactive, login is refused, events fire; enabling lets them back in', async () => {
    const user = await newUser();
    const first = await login(user.email, user.password).expect(200);
    const second = await login(user.email, user.password).expect(200);
    expect((await introspect(h.service, first.body.access_token).expect(200)).body.active).toBe(true);
    // The refresh path reads the user cache: warm it.
    const rotated = await refresh(second.body.refresh_token).expect(200);

    const res = await h.api('post', `/admin/users/${user.id}/disable`).expect(200);
    expect(res.body).toMatchObject({ user: { id: user.id, disabled: true }, sessions_ended: 2 });
    expect((await refresh(first.body.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    expect((await refresh(rotated.body.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    for (const at of [first.body.access_token, rotated.body.access_token]) {
      expect((await introspect(h.service, at).expect(200)).body.active).toBe(false);
    }
    expect((await http().get('/auth/me').set('Authorization', `Bearer ${first.body.access_token}`).expect(401)).body.error).toBe('invalid_token');
    expect((await login(user.email, user.password).expect(400)).body.error).toBe('invalid_grant');

    const events = await h.events();
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'user.disabled',
        actor: expect.objectContaining({ type: 'client', id: 'test-admin' }),
        subject: { type: 'user', id: user.id, email: user.email },
        data: { user_id: user.id, sessions_ended: 2 },
      }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'family.revoked',
        subject: expect.objectContaining({ type: 'user', id: user.id }),
        data: expect.objectContaining({ reason: 'disabled_user', count: 2 }),
      }),
    );

    expect((await h.api('post', `/admin/users/${user.id}/enable`).expect(200)).body.user.disabled).toBe(false);
    await login(user.email, user.password).expect(200);
    expect((await h.api('post', '/admin/users/000000000000000000000000/disable').expect(404)).body.error).toBe('not_found');
  });

  it('disabling ends the user’s browser sign-ins by the logout-all path: the clients get a back-channel logout token', async () => {
    const logoutTokens: string[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        logoutTokens.push(new URLSearchParams(body).get('logout_token') ?? '');
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const { id: rp } = await newClient({
        name: 'RP',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['https://rp.example.org/cb'],
        backchannel_logout_uri: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel`,
      });
      const user = await newUser();
      const { session } = await h.service.stores.browserSessions.create({ userId: user.id, authTime: Date.now(), amr: ['pwd'] });
      const tokens = createRefreshTokens({ secret: 'r'.repeat(40), random: cryptoRandom, families: h.service.stores.families });
      await tokens.create(
        {
          subject: user.id,
          clientId: rp,
          scope: 'openid',
          audience: h.service.config.audience,
          signIn: { sid: session.id, authTime: session.authTime, amr: ['pwd'] },
        },
        {},
      );
      expect((await h.api('post', `/admin/users/${user.id}/disable`).expect(200)).body.sessions_ended).toBe(1);
      expect(await h.service.stores.browserSessions.listByUser(user.id)).toEqual([]);
      await waitFor(() => logoutTokens.length > 0, 10_000, 50);
      const claims = JSON.parse(Buffer.from(logoutTokens[0]!.split('.')[1]!, 'base64url').toString());
      expect(claims).toMatchObject({ sub: user.id, sid: session.id, aud: rp });
    } finally {
      receiver.close();
    }
  });

  it('publishes every change of a user on the user-change feed, so other instances’ user caches drop it', async () => {
    const changed: string[] = [];
    h.service.stores.userChanges.subscribe({ changed: (id) => changed.push(id), reset: () => undefined });
    const user = await newUser();
    await h
      .api('put', `/admin/users/${user.id}/roles`)
      .send({ roles: ['x'] })
      .expect(200);
    expect(changed.filter((id) => id === user.id)).toHaveLength(1);
    await h.api('post', `/admin/users/${user.id}/disable`).expect(200);
    await h.api('post', `/admin/users/${user.id}/enable`).expect(200);
    await h.api('delete', `/admin/users/${user.id}`).expect(200);
    expect(changed.filter((id) => id === user.id)).toHaveLength(4);
  });

  it('deletes a user: their sessions end, they are gone', async () => {
    const user = await newUser();
    const session = await login(user.email, user.password).expect(200);
    expect((await h.api('delete', `/admin/users/${user.id}`).expect(200)).body).toEqual({ deleted: true, sessions_ended: 1 });
    expect((await refresh(session.body.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    expect((await introspect(h.service, session.body.access_token).expect(200)).body.active).toBe(false);
    expect((await h.api('get', `/admin/users/${user.id}`).expect(404)).body.error).toBe('not_found');
    expect((await h.api('delete', `/admin/users/${user.id}`).expect(404)).body.error).toBe('not_found');
    expect((await login(user.email, user.password).expect(400)).body.error).toBe('invalid_grant');
  });
});

describe('a user’s sessions', () => {
  it('lists them, ends one, then all', async () => {
    const user = await newUser();
    const a = await http().post('/auth/login').set('User-Agent', 'browser A').send({ email: user.email, password: user.password }).expect(200);
    const b = await login(user.email, user.password).expect(200);
    const c = await login(user.email, user.password).expect(200);
    const listed = (await h.api('get', `/admin/users/${user.id}/sessions`).expect(200)).body.sessions as { id: string; user_agent: string | null }[];
    expect(listed).toHaveLength(3);
    const sidOf = (at: string) => JSON.parse(Buffer.from(at.split('.')[1]!, 'base64url').toString()).sid as string;
    expect(listed.map((session) => session.id).sort()).toEqual([a, b, c].map((res) => sidOf(res.body.access_token)).sort());
    expect(listed.find((session) => session.id === sidOf(a.body.access_token))).toMatchObject({ client_id: 'demo-app', user_agent: 'browser A' });

    await h.api('delete', `/admin/users/${user.id}/sessions/${sidOf(a.body.access_token)}`).expect(200);
    expect((await refresh(a.body.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    const bRotated = await refresh(b.body.refresh_token).expect(200);
    expect((await h.api('delete', `/admin/users/${user.id}/sessions/${sidOf(a.body.access_token)}`).expect(404)).body.error).toBe('not_found');
    // Another user's session is not this user's.
    const other = await newUser();
    const theirs = await login(other.email, other.password).expect(200);
    await h.api('delete', `/admin/users/${user.id}/sessions/${sidOf(theirs.body.access_token)}`).expect(404);
    await refresh(theirs.body.refresh_token).expect(200);

    expect((await h.api('delete', `/admin/users/${user.id}/sessions`).expect(200)).body).toEqual({ sessions_ended: 2 });
    expect((await refresh(bRotated.body.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    expect((await refresh(c.body.refresh_token).expect(400)).body.error).toBe('invalid_grant');
    expect((await h.api('get', `/admin/users/${user.id}/sessions`).expect(200)).body.sessions).toEqual([]);
    expect((await h.api('get', '/admin/users/000000000000000000000000/sessions').expect(404)).body.error).toBe('not_found');
    const events = await h.events();
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'family.revoked', data: expect.objectContaining({ reason: 'admin_ended', user_id: user.id }) }),
    );
  });
});

describe('odd input', () => {
  it('is answered in the JSON error format, never with a 500', async () => {
    const long = 'a'.repeat(5000);
    const calls: [string, () => request.Test][] = [
      ['malformed escape', () => h.api('get', '/admin/users/%E0%A4%A')],
      ['long id', () => h.api('delete', `/admin/users/${long}/sessions/${long}`)],
      ['long client id', () => h.api('patch', `/admin/clients/${long}`).send({ name: 'x' })],
      ['empty cursor', () => h.api('get', '/admin/users?cursor=')],
      ['NUL prefix', () => h.api('get', '/admin/users?email_prefix=%00')],
      ['long prefix', () => h.api('get', `/admin/users?email_prefix=${long}`)],
      ['text body', () => h.api('patch', '/admin/clients/demo-app').set('Content-Type', 'text/plain').send('name=x')],
      ['bad JSON', () => h.api('patch', '/admin/clients/demo-app').set('Content-Type', 'application/json').send('{"name":')],
      ['form body', () => h.api('patch', '/admin/clients/demo-app').type('form').send({ scopes: 'read' })],
      ['numbers as roles', () => h.api('put', '/admin/users/x/roles').send({ roles: [1, 2] })],
      ['array body', () => h.api('post', '/admin/users').send([1])],
    ];
    for (const [name, call] of calls) {
      const res = await call();
      expect({ name, server: res.status >= 500, json: typeof res.body.error === 'string' && typeof res.body.error_description === 'string' }).toEqual({
        name,
        server: false,
        json: true,
      });
    }
    expect((await h.api('get', '/admin/users?email_prefix=%00').expect(400)).body.error_description).toContain('email_prefix');
  });
});

describe('audit', () => {
  it('every call is a log line at info and an admin.action event naming the actor, action and target; never a secret', async () => {
    const user = await newUser();
    await h.api('post', `/admin/users/${user.id}/disable`).expect(200);
    await h.api('get', '/admin/clients/no-such').expect(404);
    await h.api('get', '/admin/keys').expect(200);
    const audits = h.service.logs.entries().filter((entry) => entry.msg === 'admin action');
    expect(audits).toContainEqual(
      expect.objectContaining({ level: 'info', audit: { actor: 'test-admin', action: 'user.disable', target: user.id, outcome: 'ok', status: 200 } }),
    );
    expect(audits).toContainEqual(
      expect.objectContaining({ audit: { actor: 'test-admin', action: 'client.show', target: 'no-such', outcome: 'refused', status: 404 } }),
    );
    const events = (await h.events()).filter((event) => event.type === 'admin.action');
    expect(events).toContainEqual(
      expect.objectContaining({
        actor: expect.objectContaining({ type: 'client', id: 'test-admin' }),
        subject: { type: 'user', id: user.id },
        data: { action: 'user.disable', target: user.id, outcome: 'ok', status: 200 },
      }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ subject: { type: 'client', id: 'test-admin' }, data: { action: 'keys.list', target: null, outcome: 'ok', status: 200 } }),
    );
    // As many audit lines as events: one of each per call.
    expect(events.length).toBe(audits.length);
    const everything = `${h.service.logs.text()}${JSON.stringify(await h.events())}`;
    expect(everything).not.toContain(h.adminSecret);
    expect(everything).not.toContain(user.password);
  });
});
