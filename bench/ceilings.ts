/**
 * The ceilings the authority's workloads are compared with, measured in a process of their
 * own (started by `bench/run.ts`, driven over IPC) so that nothing else shares its event
 * loop or its libuv pool. Each measurement keeps `concurrency` operations in flight for a
 * warm-up, then for the measured duration, and reports operations per second, latency
 * percentiles and the CPU the process used (in cores).
 *
 * - `sign`: one RFC 9068 access token, built exactly as `src/tokens/access-token.ts` does
 *   (header encoded once, claims JSON + base64url, node:crypto `sign`, on the libuv pool for
 *   RSA, inline for EC/Ed25519), or through jose's `SignJWT` (`impl: 'jose'`, what
 *   node-oidc-provider uses);
 * - `sign-redis`: the same signature, then one Redis round trip (SET of a family-sized value);
 * - `argon2`: `argon2.verify` of a hash made with the given parameters;
 * - `verify`: jose `jwtVerify` of a real access token against the published key, as the
 *   introspection endpoint does;
 * - `koa-jwks`: starts a bare Koa app answering every GET with the given bytes (the bench
 *   drives it over HTTP like the authority);
 * - `koa-token`: starts the smallest Koa token endpoint that does what ours must per request
 *   and nothing else: read the form; for client_credentials decode Basic and check the
 *   secret's SHA-256, for refresh_token make one Redis round trip and mint a random token;
 *   sign as `sign` does and answer JSON. No validation, throttling, logging or security
 *   headers: it is the floor HTTP itself puts under the ceilings on this machine.
 */
import { generateKeyPairSync, hash, randomBytes, sign as cryptoSign, timingSafeEqual, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import argon2 from 'argon2';
import { Redis } from 'ioredis';
import { importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import Koa from 'koa';
import { percentile } from './stats.js';

type Alg = 'RS256' | 'ES256' | 'EdDSA';

interface Timing {
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** A measured operation and how many run at once; the caller adds how long. */
export type CeilingOp = { readonly concurrency: number } & (
  | { type: 'sign'; impl: 'crypto' | 'jose'; alg: Alg }
  | { type: 'sign-redis'; redisUrl: string }
  | { type: 'argon2'; memoryCost: number; timeCost: number; parallelism: number }
  | { type: 'verify'; token: string; jwk: JWK; issuer: string }
);

export type CeilingRequest =
  | (CeilingOp & Timing)
  | { type: 'koa-jwks'; body: string; contentType: string; cacheControl: string; etag: string }
  | { type: 'koa-token'; clientId: string; clientSecret: string; redisUrl: string };

export interface CeilingResult {
  readonly ops: number;
  readonly seconds: number;
  readonly rate: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  /** CPU of this process over the measured window, in cores (1.0 = one core busy). */
  readonly cpuCores: number;
  /** Every operation's latency (ms), for percentiles over several windows. */
  readonly latencies: number[];
}

/** Runs `operation` with `concurrency` in flight until `ms` have passed; records latencies when asked. */
async function runFor(operation: () => unknown, concurrency: number, ms: number, latencies?: number[]): Promise<number> {
  const end = performance.now() + ms;
  let ops = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const started = performance.now();
        await operation();
        ops += 1;
        latencies?.push(performance.now() - started);
      }
    }),
  );
  return ops;
}

async function measure(operation: () => unknown, { concurrency, warmupMs, durationMs }: Timing): Promise<CeilingResult> {
  await runFor(operation, concurrency, warmupMs);
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const ops = await runFor(operation, concurrency, durationMs, latencies);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  return {
    ops,
    seconds,
    rate: ops / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    cpuCores: (cpu.user + cpu.system) / 1e6 / seconds,
    latencies,
  };
}

const keys = new Map<Alg, KeyObject>();
function privateKeyFor(alg: Alg): KeyObject {
  let key = keys.get(alg);
  if (!key) {
    // The sizes the authority's keys:rotate makes (src/keys/algorithms.ts).
    if (alg === 'RS256') key = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey;
    else if (alg === 'ES256') key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    else key = generateKeyPairSync('ed25519').privateKey;
    keys.set(alg, key);
  }
  return key;
}

/** Claims shaped like a client_credentials token of the authority. */
function claims() {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: 'http://127.0.0.1:3000',
    sub: 'bench-service',
    aud: 'http://127.0.0.1:3000',
    exp: iat + 900,
    iat,
    nbf: iat,
    jti: randomBytes(16).toString('base64url'),
    client_id: 'bench-service',
    scope: 'read write',
  };
}

/** What `src/tokens/access-token.ts` does per token, without the service around it. */
function cryptoSigner(alg: Alg): () => Promise<string> | string {
  const key = privateKeyFor(alg);
  const header = Buffer.from(JSON.stringify({ alg, typ: 'at+jwt', kid: 'bench' })).toString('base64url');
  const digest = alg === 'EdDSA' ? null : 'sha256';
  const input: SignKeyObjectInput = alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : { key };
  return () => {
    const signingInput = `${header}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}`;
    if (alg !== 'RS256') return `${signingInput}.${cryptoSign(digest, Buffer.from(signingInput), input).toString('base64url')}`;
    return new Promise((resolve, reject) => {
      cryptoSign(digest, Buffer.from(signingInput), input, (err, signature) =>
        err ? reject(err) : resolve(`${signingInput}.${signature.toString('base64url')}`),
      );
    });
  };
}

function joseSigner(alg: Alg): () => Promise<string> {
  const key = privateKeyFor(alg);
  return () => new SignJWT(claims()).setProtectedHeader({ alg, typ: 'at+jwt', kid: 'bench' }).sign(key);
}

/** About the size of a stored family (src/stores/redis/families.ts). */
const familySizedValue = () =>
  JSON.stringify({
    s: 'x'.repeat(24),
    c: 'bench-app',
    sc: 'read',
    a: 'http://127.0.0.1:3000',
    ca: Date.now(),
    lu: Date.now(),
    x: Date.now(),
    ie: Date.now(),
    h: 'h'.repeat(43),
    ph: 'p'.repeat(43),
    pt: Date.now(),
    ua: 'autocannon',
    ip: '127.0.0.1',
  });

const servers: Server[] = [];
const redisClients: Redis[] = [];

/** Serves `app` on a port of its own; resolves its URL. */
async function serve(app: Koa): Promise<{ url: string }> {
  const server = createServer(app.callback());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

async function readText(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** See `koa-token` above. */
function koaTokenEndpoint(request: Extract<CeilingRequest, { type: 'koa-token' }>): Koa {
  const signer = cryptoSigner('RS256');
  const secretDigest = hash('sha256', request.clientSecret, 'buffer');
  const redis = new Redis(request.redisUrl, { maxRetriesPerRequest: 1 });
  redisClients.push(redis);
  let counter = 0;
  const app = new Koa();
  app.use(async (ctx) => {
    const form = new URLSearchParams(await readText(ctx.req));
    let refreshToken: string | undefined;
    if (form.get('grant_type') === 'client_credentials') {
      const [id = '', secret = ''] = Buffer.from(ctx.get('authorization').slice('Basic '.length), 'base64').toString().split(':');
      if (decodeURIComponent(id) !== request.clientId || !timingSafeEqual(hash('sha256', decodeURIComponent(secret), 'buffer'), secretDigest)) {
        ctx.status = 401;
        ctx.body = { error: 'invalid_client' };
        return;
      }
    } else if (form.get('grant_type') === 'refresh_token' && form.get('refresh_token')) {
      counter = (counter + 1) % 1000;
      await redis.set(`bench:floor:${counter}`, familySizedValue(), 'PX', 60_000);
      refreshToken = randomBytes(32).toString('base64url');
    } else {
      ctx.status = 400;
      ctx.body = { error: 'unsupported_grant_type' };
      return;
    }
    const accessToken = await signer();
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: 900,
      scope: 'read write',
      ...(refreshToken !== undefined && { refresh_token: refreshToken }),
    };
  });
  return app;
}

async function handle(request: CeilingRequest): Promise<unknown> {
  switch (request.type) {
    case 'sign': {
      const signer = request.impl === 'jose' ? joseSigner(request.alg) : cryptoSigner(request.alg);
      return measure(signer, request);
    }
    case 'sign-redis': {
      const redis = new Redis(request.redisUrl, { maxRetriesPerRequest: 1 });
      const signer = cryptoSigner('RS256');
      const value = familySizedValue();
      let counter = 0;
      try {
        return await measure(async () => {
          await signer();
          counter = (counter + 1) % 1000;
          await redis.set(`bench:ceiling:${counter}`, value, 'PX', 60_000);
        }, request);
      } finally {
        await redis.quit();
      }
    }
    case 'argon2': {
      const options = { type: argon2.argon2id, memoryCost: request.memoryCost, timeCost: request.timeCost, parallelism: request.parallelism } as const;
      const password = 'correct horse battery staple';
      const hash = await argon2.hash(password, options);
      return measure(async () => {
        if (!(await argon2.verify(hash, password))) throw new Error('argon2 verify failed');
      }, request);
    }
    case 'verify': {
      const alg = String(request.jwk.alg);
      const key = await importJWK(request.jwk, alg);
      return measure(() => jwtVerify(request.token, key, { algorithms: [alg], issuer: request.issuer, typ: 'at+jwt' }), request);
    }
    case 'koa-jwks': {
      const app = new Koa();
      const body = Buffer.from(request.body);
      app.use((ctx) => {
        ctx.set('Cache-Control', request.cacheControl);
        ctx.set('ETag', request.etag);
        ctx.type = request.contentType;
        ctx.body = body;
      });
      return serve(app);
    }
    case 'koa-token':
      return serve(koaTokenEndpoint(request));
  }
}

process.on('message', (message: { id: number; request: CeilingRequest }) => {
  handle(message.request).then(
    (result) => process.send?.({ id: message.id, result }),
    (err: unknown) => process.send?.({ id: message.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
const stop = () => {
  for (const server of servers) server.close();
  for (const redis of redisClients) redis.disconnect();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.once('disconnect', stop);
process.send?.({ type: 'ready' });
