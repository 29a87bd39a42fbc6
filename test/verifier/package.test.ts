/**
 * Issue 22 item 8: a resource server installs the kit on its own. `npm pack` makes the
 * tarball of packages/verifier (@token-authority/verifier; its `prepack` builds it), a new
 * project outside the repository installs it with Koa and Express from the registry (or
 * npm's cache), and a Koa and an Express resource server written against the installed
 * package alone verify the tokens of a running authority: 200 with a real token, 401 with a
 * forged, an expired or another API's one. Its type declarations are checked the same way,
 * with the TypeScript compiler on a consumer file.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTracked, stopProcess, waitFor } from '../support/processes.js';
import { startAuthority, type RunningAuthority } from './real-authority.js';

const REPO = join(import.meta.dirname, '..', '..');
const PACKAGE = join(REPO, 'packages', 'verifier');
const NAME = '@token-authority/verifier';

/**
 * npm, run as a resource server's developer would: none of the `npm_*` variables an outer
 * `npm test` sets (which name this repository's package and workspace), but the same
 * registry, cache and user config.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_globalconfig']);
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_') || keep.has(key.toLowerCase())));
}

/** A command to its end, without blocking the event loop (the authority answers in this process). */
function run(command: string, args: readonly string[], cwd: string): Promise<{ code: number; stdout: string; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: npmEnv(), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, output: `${stdout}${stderr}` });
    });
  });
}

/** Its standard output; throws with everything it printed if it fails. */
async function ok(command: string, args: readonly string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.code}):\n${result.output}`);
  return result.stdout;
}

const KOA_SERVER = `import Koa from 'koa';
import { createVerifier, koa } from '${NAME}';

const verifier = createVerifier({ issuer: process.env.ISSUER, audience: process.env.AUDIENCE });
const app = new Koa();
app.use(koa.requireToken(verifier));
app.use(async (ctx, next) => (ctx.path === '/admin' ? koa.requireRole('admin')(ctx, next) : next()));
app.use((ctx) => {
  const { sub, client_id, roles } = ctx.state.token;
  ctx.body = { server: 'koa', path: ctx.path, sub, client_id, roles };
});
const server = app.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

const EXPRESS_SERVER = `import express from 'express';
import { createVerifier, express as auth } from '${NAME}';

const verifier = createVerifier({ issuer: process.env.ISSUER, audience: process.env.AUDIENCE });
const app = express();
const claims = (req, res) => {
  const { sub, client_id, roles } = res.locals.token;
  res.json({ server: 'express', path: req.path, sub, client_id, roles });
};
app.get('/me', auth.requireToken(verifier), claims);
app.get('/admin', auth.requireToken(verifier), auth.requireRole('admin'), claims);
app.use(auth.tokenErrorHandler());
const server = app.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

/** Uses the declarations: compiles only if they carry the real types. */
const CONSUMER_TS = `import { createVerifier, isTokenError, koa, express, type VerifiedToken } from '${NAME}';

const verifier = createVerifier({ issuer: 'https://auth.example.test', audience: 'https://api.example.test' });
export async function subject(token: string): Promise<string | undefined> {
  try {
    const claims: VerifiedToken = await verifier.verify(token, { scopes: ['orders:read'] });
    const scopes: ReadonlySet<string> = claims.scope;
    return scopes.has('orders:read') ? claims.sub : undefined;
  } catch (err) {
    if (isTokenError(err)) return err.code;
    throw err;
  }
}
export const middlewares = [koa.requireToken(verifier), koa.requireScope('a'), express.requireToken(verifier), express.requireRole('admin')];
`;

/** The same, with a claim used as the wrong type: the compiler must refuse it. */
const CONSUMER_WRONG_TS = `import { createVerifier } from '${NAME}';

const verifier = createVerifier({ issuer: 'https://auth.example.test', audience: 'https://api.example.test' });
export async function expiry(token: string): Promise<string> {
  const claims = await verifier.verify(token);
  return claims.exp;
}
`;

let work: string;
let project: string;
let packed: { filename: string; files: { path: string }[] };
let authority: RunningAuthority | undefined;
const servers = new Map<'koa' | 'express', { child: ReturnType<typeof spawnTracked>; url: string; output: () => string }>();
let userToken: string;
let clientToken: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'verifier-package-'));
  // `npm pack` runs the package's `prepack` (its build) and prints what went in.
  // Its scripts' output goes to stdout before the JSON listing.
  const listing = await ok('npm', ['pack', '--json', '--pack-destination', work], PACKAGE);
  packed = (JSON.parse(listing.slice(listing.search(/^\[/m))) as (typeof packed)[])[0]!;

  project = join(work, 'resource-server');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'resource-server', version: '1.0.0', private: true, type: 'module' }, null, 2));
  await ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed.filename), 'koa', 'express'], project);
  writeFileSync(join(project, 'koa-server.js'), KOA_SERVER);
  writeFileSync(join(project, 'express-server.js'), EXPRESS_SERVER);

  authority = await startAuthority();
  [userToken, clientToken] = await Promise.all([authority.passwordToken(), authority.clientCredentialsToken()]);
  for (const name of ['koa', 'express'] as const) {
    const child = spawnTracked(process.execPath, [`${name}-server.js`], {
      cwd: project,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ISSUER: authority.url, AUDIENCE: authority.service.config.audience },
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(() => output.includes('listening on') || child.exitCode !== null, 30_000).catch(() => undefined);
    const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
    if (port === undefined) throw new Error(`the ${name} resource server did not start:\n${output}`);
    servers.set(name, { child, url: `http://127.0.0.1:${port}`, output: () => output });
  }
}, 300_000);

afterAll(async () => {
  for (const { child } of servers.values()) await stopProcess(child);
  await authority?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

async function call(base: string, path: string, token?: string): Promise<{ status: number; body: Record<string, unknown>; challenge: string | null }> {
  const response = await fetch(`${base}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as Record<string, unknown>, challenge: response.headers.get('www-authenticate') };
}

/** A token like the authority's user token with `changes`, signed by `key` (default: the authority's active key). */
async function signed(changes: Record<string, unknown>, key?: { kid: string; alg: string; privateKey: KeyObject }): Promise<string> {
  const signer = key ?? authority!.service.keys.current().signingKey();
  const claims = { ...decodeJwt(userToken), jti: `test-${Math.random()}`, ...changes };
  return new SignJWT(claims).setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt' }).sign(signer.privateKey);
}

describe('the packed package', () => {
  it('holds the compiled modules and their declarations, the README and package.json, and nothing else', () => {
    const files = packed.files.map((file) => file.path).sort();
    const modules = readdirSync(join(PACKAGE, 'src'))
      .filter((name) => name.endsWith('.ts'))
      .map((name) => name.slice(0, -3));
    expect(modules).toContain('index');
    expect(files).toEqual(['README.md', ...modules.flatMap((name) => [`dist/${name}.d.ts`, `dist/${name}.js`]), 'package.json'].sort());
    expect(files.filter((path) => /(^|\/)(src|test|keys)\/|\.ts$(?<!\.d\.ts)|\.map$|\.pem$|tsconfig/.test(path))).toEqual([]);
  });

  it('installs with jose as its only dependency, as an ES module with types', () => {
    const installed = JSON.parse(readFileSync(join(project, 'node_modules', ...NAME.split('/'), 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(installed).toMatchObject({ name: NAME, type: 'module', exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } } });
    expect(Object.keys(installed.dependencies as object)).toEqual(['jose']);
    // Nothing of the authority came along: its server dependencies are not in the new project.
    for (const name of ['ioredis', 'mongoose', 'argon2', 'lru-cache', 'token-authority'])
      expect(readdirSync(join(project, 'node_modules')), name).not.toContain(name);
  });

  it("its declarations type a consumer's code, and refuse a claim used as the wrong type", async () => {
    writeFileSync(join(project, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(join(project, 'consumer-wrong.ts'), CONSUMER_WRONG_TS);
    // One compilation of both files (seconds of CPU each), without skipLibCheck, so that the
    // package's own declarations are checked too; @types/node from the repository (they name
    // node:crypto's KeyObject, as any Node library's do).
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const options = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2023'];
    const types = ['--types', 'node', '--typeRoots', join(REPO, 'node_modules', '@types')];
    const result = await run(process.execPath, [tsc, ...options, ...types, 'consumer.ts', 'consumer-wrong.ts'], project);
    expect(result.code).not.toBe(0);
    const errors = result.output.split('\n').filter((line) => /error TS\d+/.test(line));
    expect(errors).toEqual([expect.stringMatching(/^consumer-wrong\.ts\(6,3\): error TS2322: Type 'number' is not assignable to type 'string'/)]);
  }, 180_000);
});

describe.each(['koa', 'express'] as const)('a %s resource server using only the installed package', (name) => {
  const base = () => servers.get(name)!.url;

  it("answers 200 with the authority's tokens, with their claims", async () => {
    const user = await call(base(), '/me', userToken);
    expect(user, servers.get(name)!.output()).toMatchObject({ status: 200, body: { server: name, sub: decodeJwt(userToken).sub, client_id: 'demo-app' } });
    expect(await call(base(), '/me', clientToken)).toMatchObject({
      status: 200,
      body: { server: name, sub: 'demo-service', client_id: 'demo-service', roles: [] },
    });
    expect(await call(base(), '/admin', userToken)).toMatchObject({ status: 200, body: { path: '/admin', roles: ['admin'] } });
  });

  it('answers 403 insufficient_scope to a valid token without the role', async () => {
    expect(await call(base(), '/admin', clientToken)).toMatchObject({ status: 403, body: { error: 'insufficient_scope' } });
  });

  it('answers 401 with a bare challenge when there is no token', async () => {
    expect(await call(base(), '/me')).toMatchObject({ status: 401, challenge: 'Bearer', body: { error: 'missing_token' } });
  });

  it('answers 401 invalid_token to a forged token: another key under the same kid, or altered claims', async () => {
    const { kid } = authority!.service.keys.current().signingKey();
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = await call(base(), '/me', await signed({}, { kid, alg: 'RS256', privateKey }));
    expect(forged).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
    expect(forged.challenge).toMatch(/^Bearer error="invalid_token"/);
    // The service's real token and signature, with the admin role written into its claims.
    const [header, , signature] = clientToken.split('.');
    const claims = Buffer.from(JSON.stringify({ ...decodeJwt(clientToken), roles: ['admin'] })).toString('base64url');
    expect(await call(base(), '/admin', `${header}.${claims}.${signature}`)).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
  });

  it('answers 401 expired_token to an expired token signed by the authority', async () => {
    const now = Math.floor(Date.now() / 1000);
    const result = await call(base(), '/me', await signed({ iat: now - 3600, nbf: now - 3600, exp: now - 600 }));
    expect(result).toMatchObject({ status: 401, body: { error: 'expired_token' } });
    expect(result.challenge).toMatch(/^Bearer error="invalid_token"/);
  });

  it("answers 401 invalid_token to the authority's token for another API", async () => {
    const result = await call(base(), '/me', await signed({ aud: 'https://orders.example.test' }));
    expect(result).toMatchObject({ status: 401, body: { error: 'invalid_token', error_description: 'the token is not meant for this API' } });
  });
});
