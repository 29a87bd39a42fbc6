import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import Koa from 'koa';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { repeatedMember } from '../../src/http/middleware/body.js';
import { errorResponses } from '../../src/http/middleware/errors.js';
import { requestLog } from '../../src/http/middleware/request-log.js';
import { readiness, type ReadinessCheck } from '../../src/http/routes/health.js';
import { cryptoRandom } from '../../src/random.js';
import { startTestService, type TestService } from '../support/app.js';
import { captureLogs } from '../support/logs.js';

let service: TestService;
let small: TestService;
beforeAll(async () => {
  service = await startTestService();
  small = await startTestService({ BODY_LIMIT: '1024' });
});
afterAll(async () => {
  await service?.close();
  await small?.close();
});

function build(options: { small?: boolean } = {}) {
  const target = options.small ? small : service;
  return { server: target.callback, logs: target.logs };
}

function expectErrorBody(body: unknown, code: string): void {
  expect(body).toEqual({ error: code, error_description: expect.any(String) });
  expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+/);
}

describe('HTTP error format', () => {
  it('answers a failure inside a public document (JWKS, metadata) in the JSON error format', async () => {
    const broken = await startTestService();
    try {
      const keys = broken.keys as { current: () => unknown };
      keys.current = () => {
        throw new Error('the key ring is gone');
      };
      for (const path of ['/.well-known/jwks.json', '/.well-known/oauth-authorization-server']) {
        const res = await request(broken.callback).get(path).expect(500).expect('Content-Type', /json/);
        expectErrorBody(res.body, 'server_error');
        expect(res.text).not.toContain('the key ring is gone');
      }
    } finally {
      await broken.close();
    }
  });

  it('answers an unknown route with 404 JSON', async () => {
    const { server } = build();
    const res = await request(server).get('/no/such/thing').expect(404).expect('Content-Type', /json/);
    expectErrorBody(res.body, 'not_found');
  });

  it('answers a wrong method with 405 JSON and Allow', async () => {
    const { server } = build();
    const res = await request(server).post('/healthz').expect(405);
    expectErrorBody(res.body, 'method_not_allowed');
    expect(res.headers.allow).toContain('GET');
  });

  it('answers a method nobody implements with 405 and Allow on a route, 404 off every route', async () => {
    const { server } = build();
    const onRoute = await request(server).propfind('/oauth/token').expect(405);
    expectErrorBody(onRoute.body, 'method_not_allowed');
    expect(onRoute.headers.allow).toBe('POST');
    // RFC 9110 §10.2.1: an empty Allow would say the resource allows nothing; there is no resource.
    const offRoute = await request(server).propfind('/no/such/thing').expect(404);
    expectErrorBody(offRoute.body, 'not_found');
    expect(offRoute.headers.allow).toBeUndefined();
  });

  it('answers malformed JSON with 400 invalid_request', async () => {
    const { server } = build();
    const res = await request(server).post('/healthz').set('Content-Type', 'application/json').send('{"email": "a@b.c",').expect(400);
    expectErrorBody(res.body, 'invalid_request');
    expect(res.body.error_description).toMatch(/JSON/);
  });

  it('answers a JSON body that is not an object with 400', async () => {
    const { server } = build();
    const res = await request(server).post('/healthz').set('Content-Type', 'application/json').send('[1,2]').expect(400);
    expectErrorBody(res.body, 'invalid_request');
  });

  it('answers an unsupported content type on a POST with 415', async () => {
    const { server } = build();
    for (const type of ['text/plain', 'multipart/form-data; boundary=x', 'application/xml']) {
      const res = await request(server).post('/healthz').set('Content-Type', type).send('<a/>').expect(415);
      expectErrorBody(res.body, 'invalid_request');
    }
  });

  it('answers a body over the limit with 413, for JSON and forms', async () => {
    const { server } = build({ small: true });
    const json = await request(server)
      .post('/healthz')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ a: 'x'.repeat(2000) }))
      .expect(413);
    expectErrorBody(json.body, 'invalid_request');
    const form = await request(server)
      .post('/healthz')
      .type('form')
      .send(`a=${'x'.repeat(2000)}`)
      .expect(413);
    expectErrorBody(form.body, 'invalid_request');
  });

  it('answers a body that does not decode as its Content-Encoding says with 400, and decodes one that does', async () => {
    const { server, logs } = build();
    for (const [encoding, type] of [
      ['gzip', 'application/json'],
      ['deflate', 'application/x-www-form-urlencoded'],
      ['br', 'application/json'],
    ] as const) {
      const res = await request(server).post('/oauth/token').set('Content-Type', type).set('Content-Encoding', encoding).send('not compressed').expect(400);
      expectErrorBody(res.body, 'invalid_request');
      expect(res.body.error_description).toMatch(/Content-Encoding/);
    }
    expect(logs.entries().filter((entry) => entry.level === 'error')).toEqual([]);
    // A real gzip body is decoded and reaches the endpoint (sent raw: supertest would re-serialise a Buffer).
    const listening = createServer(server).listen(0, '127.0.0.1');
    await once(listening, 'listening');
    try {
      const res = await fetch(`http://127.0.0.1:${(listening.address() as AddressInfo).port}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
        body: gzipSync('grant_type=client_credentials&client_id=no-such-client'),
      });
      expect(res.status).toBe(401);
      expectErrorBody(await res.json(), 'invalid_client');
    } finally {
      listening.close();
    }
  });

  it('answers a Content-Encoding it does not know with 415, logged as a rejection, not a failure', async () => {
    const { server, logs } = build();
    for (const encoding of ['zstd', 'compress', 'gzip, gzip', 'GZIP']) {
      const res = await request(server)
        .post('/oauth/token')
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .set('Content-Encoding', encoding)
        .send('grant_type=client_credentials')
        .expect(415);
      expectErrorBody(res.body, 'invalid_request');
      expect(res.body.error_description).toBe('unsupported Content-Encoding (send identity, gzip, deflate or br)');
    }
    expect(logs.entries().filter((entry) => entry.level === 'error')).toEqual([]);
  });

  it('closes a connection whose body it stopped reading midway, so the next request on it is not lost', async () => {
    const { server } = build();
    const listening = createServer(server).listen(0, '127.0.0.1');
    await once(listening, 'listening');
    const url = `http://127.0.0.1:${(listening.address() as AddressInfo).port}/oauth/token`;
    const expectNextRequestsServed = async () => {
      for (let index = 0; index < 3; index++) {
        const next = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials&client_id=no-such-client',
        });
        expect(next.status).toBe(401);
        await next.text();
      }
    };
    try {
      for (const encoding of ['br', 'gzip', 'deflate']) {
        // Far more than one read: the decoder fails on the first chunk and the rest is never read.
        const broken = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': encoding },
          body: 'x'.repeat(300_000),
        });
        expect(broken.status).toBe(400);
        expect(broken.headers.get('connection')).toBe('close');
        await broken.text();
        // fetch keeps connections alive: without the close this one would reuse the broken socket.
        await expectNextRequestsServed();
      }
      // A chunked body (no Content-Length to refuse up front) that outgrows BODY_LIMIT.
      const chunks = Array.from({ length: 40 }, () => new TextEncoder().encode('x'.repeat(8192)));
      const huge = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new ReadableStream({ pull: (controller) => (chunks.length > 0 ? controller.enqueue(chunks.pop()!) : controller.close()) }),
        duplex: 'half',
      } as RequestInit);
      expect(huge.status).toBe(413);
      await huge.text();
      await expectNextRequestsServed();
      // A body refused before anyone read it (415) is drained by Node: the connection stays.
      const unread = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
      expect(unread.status).toBe(415);
      expect(unread.headers.get('connection')).toBe('keep-alive');
      await unread.text();
      await expectNextRequestsServed();
    } finally {
      listening.close();
    }
  });

  it('rejects a repeated form parameter (RFC 6749 §3.2) before routing', async () => {
    const { server } = build();
    const res = await request(server).post('/healthz').type('form').send('grant_type=password&grant_type=client_credentials').expect(400);
    expectErrorBody(res.body, 'invalid_request');
    expect(res.body.error_description).toMatch(/grant_type/);
  });

  it('rejects a JSON member repeated in any object, however it is spelled, before routing', async () => {
    const { server } = build();
    for (const body of [
      '{"grant_type":"password","grant_type":"client_credentials"}',
      '{"grant_type":"password", "grant_\\u0074ype" : "client_credentials"}',
      '{"a":{"b":1,"b":2}}',
      '{"a":[{"b":1},{"c":{"d":"x","d":"y"}}]}',
    ]) {
      const res = await request(server).post('/oauth/token').set('Content-Type', 'application/json').send(body).expect(400);
      expectErrorBody(res.body, 'invalid_request');
      expect(res.body.error_description).toMatch(/is repeated/);
    }
  });

  it('finds repeated members exactly: none in any JSON without one, the one in any with one', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        // JSON.stringify writes each member once, with keys that may need escaping.
        expect(repeatedMember(JSON.stringify(value) ?? 'null')).toBeUndefined();
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }), fc.nat(), (object, pick) => {
        const keys = Object.keys(object);
        const key = keys[pick % keys.length]!;
        const text = JSON.stringify(object);
        const doubled = `${text.slice(0, -1)},${JSON.stringify(key)}:"again"}`;
        expect(repeatedMember(doubled)).toBe(key);
      }),
      { numRuns: 500 },
    );
  });

  it('turns an unexpected failure into 500 server_error without a stack, and logs the cause', async () => {
    const logs = captureLogs();
    const app = new Koa();
    app.use(requestLog({ logger: logs.logger, clock: systemClock, random: cryptoRandom }));
    app.use(errorResponses({ logger: logs.logger }));
    app.use(() => {
      throw new TypeError('cannot read secret-free internals at /srv/app.ts:12');
    });
    const res = await request(app.callback()).get('/anything').expect(500);
    expectErrorBody(res.body, 'server_error');
    expect(JSON.stringify(res.body)).not.toContain('internals');
    const logged = logs.entries().find((entry) => entry.msg === 'request failed') as { err: { message: string; stack: string } };
    expect(logged.err.message).toContain('internals');
    expect(logged.err.stack).toContain('TypeError');
  });

  it('contains a throwing readiness check as a 503', async () => {
    const logs = captureLogs();
    const res = await request(
      readinessApp(
        [
          {
            name: 'boom',
            check: () => {
              throw new Error('database exploded');
            },
          },
        ],
        logs.logger,
      ),
    )
      .get('/readyz')
      .expect(503);
    expect(res.body.error).toBe('temporarily_unavailable');
    expect(JSON.stringify(res.body)).not.toContain('exploded');
  });
});

describe('request ids and the access log', () => {
  it('logs an unmatched path cut and redacted: a token a client put in the path never reaches the log', async () => {
    const { server, logs } = build();
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw';
    await request(server).get(`/api/orders/${token}/items`).set('x-request-id', 'path-in-log').expect(404);
    const line = logs.entries().find((entry) => entry.msg === 'request' && entry.reqId === 'path-in-log');
    expect(line).toMatchObject({ route: '(no route)', path: '/api/orders/[redacted]/items', status: 404 });
    expect(logs.text()).not.toContain(token);
    expect(logs.text()).not.toContain('c2lnbmF0dXJl');
  });

  it('echoes a sane x-request-id and logs one line per request with method, route, status, latency', async () => {
    const { server, logs } = build();
    const res = await request(server).get('/healthz').set('x-request-id', 'abc-123').expect(200);
    expect(res.headers['x-request-id']).toBe('abc-123');
    const line = logs.entries().find((entry) => entry.msg === 'request' && entry.reqId === 'abc-123');
    expect(line).toMatchObject({ reqId: 'abc-123', method: 'GET', route: '/healthz', status: 200, latencyMs: expect.any(Number) });
  });

  it('replaces an unsafe request id with a fresh one', async () => {
    const { server } = build();
    const res = await request(server).get('/healthz').set('x-request-id', 'bad id\twith spaces').expect(200);
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('the public documents, through the whole application', () => {
  const JWKS = '/.well-known/jwks.json';

  it('echo the request id and log one line, on 200 and on 304 alike', async () => {
    const { server, logs } = build();
    const first = await request(server).get(JWKS).set('x-request-id', 'jwks-1').expect(200);
    expect(first.headers['x-request-id']).toBe('jwks-1');
    expect(first.headers['content-length']).toBe(String(Buffer.byteLength(first.text)));
    const again = await request(server).get(JWKS).set('x-request-id', 'jwks-2').set('If-None-Match', first.headers.etag!).expect(304);
    expect(again.headers['x-request-id']).toBe('jwks-2');
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.text).toBe('');
    for (const [reqId, status] of [
      ['jwks-1', 200],
      ['jwks-2', 304],
    ] as const) {
      expect(logs.entries().filter((entry) => entry.msg === 'request' && entry.reqId === reqId)).toEqual([
        expect.objectContaining({ method: 'GET', route: JWKS, status }),
      ]);
    }
  });

  it('answer HEAD with the headers of the 200 and no body', async () => {
    const { server } = build();
    const get = await request(server).get(JWKS).expect(200);
    const head = await request(server).head(JWKS).expect(200);
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.text ?? '').toBe('');
  });

  it('send the whole document again when the client asks for no-cache, even with a matching ETag', async () => {
    const { server } = build();
    const first = await request(server).get(JWKS).expect(200);
    const reload = await request(server).get(JWKS).set('If-None-Match', first.headers.etag!).set('Cache-Control', 'no-cache').expect(200);
    expect(reload.text).toBe(first.text);
  });

  it('answer another method with 405 and Allow, and a preflight with CORS', async () => {
    const { server } = build();
    const post = await request(server).post(JWKS).expect(405);
    expectErrorBody(post.body, 'method_not_allowed');
    expect(post.headers.allow).toContain('GET');
    const preflight = await request(server).options(JWKS).set('Origin', 'https://anyone.test').set('Access-Control-Request-Method', 'GET').expect(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
  });
});

function readinessApp(checks: ReadinessCheck[], logger = captureLogs().logger) {
  const app = new Koa();
  app.use(requestLog({ logger, clock: systemClock, random: cryptoRandom }));
  app.use(errorResponses({ logger }));
  app.use(readiness(checks));
  return app.callback();
}

describe('health and readiness', () => {
  it('is ready when every check passes and names each failing part otherwise', async () => {
    let redisUp = true;
    const server = readinessApp([
      {
        name: 'redis',
        check: async () => {
          if (!redisUp) throw new Error('down');
        },
      },
      { name: 'keys', check: () => true },
    ]);
    await request(server).get('/readyz').expect(200);
    redisUp = false;
    const res = await request(server).get('/readyz').expect(503);
    expect(res.body.error_description).toBe('not ready: redis');
    expect(res.body.checks).toEqual({ redis: 'failing', keys: 'ok' });
  });

  it('serves /healthz and /readyz from the whole service', async () => {
    await request(service.callback).get('/healthz').expect(200, { status: 'ok' });
    const res = await request(service.callback).get('/readyz').expect(200);
    expect(res.body.checks).toEqual({ 'signing-key': 'ok', 'key-directory': 'ok' });
  });
});
