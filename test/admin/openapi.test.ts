/**
 * The admin API's OpenAPI 3.1 document: served without a token, a valid OpenAPI 3.1
 * document by @seriousme/openapi-schema-validator, and listing exactly the routes the
 * router serves under /admin (both ways).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import type Router from '@koa/router';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_OPENAPI } from '../../src/admin/openapi.js';
import { startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';
import { createAdminClient } from './support.js';

let service: TestService;

beforeAll(async () => {
  service = await startTestService();
});

afterAll(async () => {
  await service?.close();
});

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** `METHOD /path/{param}` for every route the app's router holds under /admin. */
function servedRoutes(): string[] {
  const dispatch = service.app.middleware.find((middleware) => (middleware as { router?: Router }).router !== undefined) as { router: Router } | undefined;
  expect(dispatch, 'the app mounts a @koa/router').toBeDefined();
  const routes: string[] = [];
  for (const layer of dispatch!.router.stack) {
    if (!layer.path.toString().startsWith('/admin')) continue;
    const path = layer.path.toString().replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    for (const method of layer.methods) if (method !== 'HEAD') routes.push(`${method} ${path}`);
  }
  return routes.sort();
}

function documentedRoutes(document: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(document.paths)
    .flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => METHODS.includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    )
    .sort();
}

describe('GET /admin/openapi.json', () => {
  it('is served without a token, as the module exports it', async () => {
    const res = await request(service.callback).get('/admin/openapi.json').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(ADMIN_OPENAPI)));
  });

  it('is a valid OpenAPI 3.1 document, every reference resolving', async () => {
    const served = (await request(service.callback).get('/admin/openapi.json').expect(200)).body;
    const validator = new Validator();
    const result = await validator.validate(served);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(() => validator.resolveRefs({ specification: served })).not.toThrow();
  });

  it('the validator does refuse a broken document (the check above can fail)', async () => {
    const broken = JSON.parse(JSON.stringify(ADMIN_OPENAPI));
    broken.paths['/admin/keys'].get.responses['200'].content = 'not an object';
    const result = await new Validator().validate(broken);
    expect(result.valid).toBe(false);
    const unresolvable = JSON.parse(JSON.stringify(ADMIN_OPENAPI));
    unresolvable.paths['/admin/keys'].get.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/Nope' };
    const validator = new Validator();
    await validator.validate(unresolvable);
    expect(() => validator.resolveRefs({ specification: unresolvable })).toThrow();
  });
});

describe('route coverage', () => {
  it('every route registered under /admin is in the document, and every documented operation is served', () => {
    const served = servedRoutes();
    expect(served.length).toBeGreaterThanOrEqual(18);
    expect(documentedRoutes(ADMIN_OPENAPI as unknown as { paths: Record<string, Record<string, unknown>> })).toEqual(served);
  });

  it('every documented path parameter is declared, and every operation but the document needs the admin token', () => {
    for (const [path, item] of Object.entries(
      ADMIN_OPENAPI.paths as unknown as Record<string, Record<string, { parameters?: { name: string; in: string }[]; security?: unknown[] }>>,
    )) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
      for (const [method, operation] of Object.entries(item)) {
        const declared = (operation.parameters ?? []).filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name);
        expect({ route: `${method} ${path}`, declared: declared.sort() }).toEqual({ route: `${method} ${path}`, declared: [...names].sort() });
        expect(operation.security === undefined, `${method} ${path}`).toBe(path !== '/admin/openapi.json');
      }
    }
  });
});

type Schema = {
  $ref?: string;
  type?: string | string[];
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
};

/** The problems of `value` against `schema`: the subset of JSON Schema the document uses (type, required, properties, items, enum, const, $ref). */
function problems(value: unknown, schema: Schema, at = '$'): string[] {
  if (schema.$ref) return problems(value, (ADMIN_OPENAPI.components.schemas as unknown as Record<string, Schema>)[schema.$ref.split('/').pop()!]!, at);
  const types = schema.type === undefined ? [] : [schema.type].flat();
  const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value;
  if (types.length > 0 && !types.includes(kind) && !(kind === 'integer' && types.includes('number'))) return [`${at}: ${kind} is not ${types.join('|')}`];
  if (schema.enum && !schema.enum.includes(value)) return [`${at}: ${String(value)} is not one of ${schema.enum.join(', ')}`];
  if ('const' in schema && schema.const !== value) return [`${at}: is not ${String(schema.const)}`];
  const found: string[] = [];
  if (kind === 'object' && schema.properties) {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) if (!(name in object)) found.push(`${at}.${name}: missing`);
    for (const [name, inner] of Object.entries(object)) {
      const property = schema.properties[name];
      found.push(...(property ? problems(inner, property, `${at}.${name}`) : [`${at}.${name}: not in the document`]));
    }
  }
  if (kind === 'array' && schema.items) (value as unknown[]).forEach((item, index) => found.push(...problems(item, schema.items!, `${at}[${index}]`)));
  return found;
}

describe('the answers match the document', () => {
  it('each operation’s success answer fits its documented schema, field for field', async () => {
    const clientSecret = await createAdminClient(service, 'doc-admin');
    const token = await request(service.callback)
      .post('/oauth/token')
      .set('Authorization', `Basic ${Buffer.from(`doc-admin:${clientSecret}`).toString('base64')}`)
      .type('form')
      .send({ grant_type: 'client_credentials', scope: 'admin' })
      .expect(200);
    const api = (method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string) =>
      request(service.callback)[method](path).set('Authorization', `Bearer ${token.body.access_token}`);
    const login = await request(service.callback).post('/auth/login').send({ email: USER_EMAIL, password: USER_PASSWORD }).expect(200);
    const userId = login.body.user.id as string;
    const sid = JSON.parse(Buffer.from((login.body.access_token as string).split('.')[1]!, 'base64url').toString()).sid as string;
    const calls: [method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string, documented: string, body?: object][] = [
      ['get', '/admin/clients?limit=2', '/admin/clients'],
      ['post', '/admin/clients', '/admin/clients', { name: 'Doc', client_id: 'doc-client', grant_types: ['client_credentials'] }],
      ['get', '/admin/clients/doc-client', '/admin/clients/{client_id}'],
      ['patch', '/admin/clients/doc-client', '/admin/clients/{client_id}', { scopes: ['x'] }],
      ['post', '/admin/clients/doc-client/secret', '/admin/clients/{client_id}/secret'],
      ['delete', '/admin/clients/doc-client', '/admin/clients/{client_id}'],
      ['get', '/admin/users?email_prefix=demo', '/admin/users'],
      ['post', '/admin/users', '/admin/users', { email: 'doc@example.org', password: 'a documented password 1' }],
      ['get', `/admin/users/${userId}`, '/admin/users/{user_id}'],
      ['put', `/admin/users/${userId}/roles`, '/admin/users/{user_id}/roles', { roles: ['admin'] }],
      ['get', `/admin/users/${userId}/sessions`, '/admin/users/{user_id}/sessions'],
      ['delete', `/admin/users/${userId}/sessions/${sid}`, '/admin/users/{user_id}/sessions/{session_id}'],
      ['delete', `/admin/users/${userId}/sessions`, '/admin/users/{user_id}/sessions'],
      ['post', `/admin/users/${userId}/disable`, '/admin/users/{user_id}/disable'],
      ['post', `/admin/users/${userId}/enable`, '/admin/users/{user_id}/enable'],
      ['get', '/admin/keys', '/admin/keys'],
      ['get', '/admin/clients/nobody', '/admin/clients/{client_id}'],
    ];
    const paths = ADMIN_OPENAPI.paths as unknown as Record<
      string,
      Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>
    >;
    for (const [method, path, documented, body] of calls) {
      const res = await (body ? api(method, path).send(body) : api(method, path));
      const response = paths[documented]![method]!.responses[String(res.status)];
      expect(response, `${method} ${path} answered ${res.status}, which the document does not list`).toBeDefined();
      expect({ call: `${method} ${path}`, problems: problems(res.body, response!.content!['application/json']!.schema) }).toEqual({
        call: `${method} ${path}`,
        problems: [],
      });
    }
    expect(problems({ client: { client_id: 1 } }, { $ref: '#/components/schemas/ClientEnvelope' }).length).toBeGreaterThan(0);
  });
});
