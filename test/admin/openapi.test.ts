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
import { startTestService, type TestService } from '../support/app.js';

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
