/**
 * The whole story: the real authority issues tokens, the example API verifies them
 * offline with the kit (in-process, and once as the documented command in a child process).
 */
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResourceServer } from '../../examples/resource-server/app.js';
import { createVerifier } from '../../packages/verifier/src/index.js';
import { spawnTracked, stopProcess, waitFor } from '../support/processes.js';
import { startAuthority, type RunningAuthority } from './real-authority.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..');

let authority: RunningAuthority;
let api: Server;
let apiUrl: string;
let offset = 0;
let clientToken: string;
let userToken: string;

beforeAll(async () => {
  authority = await startAuthority();
  const verifier = createVerifier({ issuer: authority.url, audience: authority.service.config.audience, now: () => Date.now() + offset });
  api = createServer(createResourceServer({ verifier }).callback());
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const address = api.address();
  apiUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  [clientToken, userToken] = await Promise.all([authority.clientCredentialsToken(), authority.passwordToken()]);
});
afterAll(async () => {
  api?.closeAllConnections();
  await new Promise<void>((resolve) => (api ? api.close(() => resolve()) : resolve()));
  await authority?.stop();
});

async function call(base: string, path: string, token?: string): Promise<{ status: number; body: Record<string, unknown>; challenge: string | null }> {
  const response = await fetch(`${base}${path}`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, challenge: response.headers.get('www-authenticate') };
}

describe('the example API with the real authority', () => {
  it('serves the public route to anyone', async () => {
    expect(await call(apiUrl, '/public')).toMatchObject({ status: 200, challenge: null });
  });

  it('asks for a token on the protected route (401, bare Bearer challenge)', async () => {
    expect(await call(apiUrl, '/me')).toEqual({ status: 401, challenge: 'Bearer', body: { error: 'missing_token', error_description: expect.any(String) } });
  });

  it('accepts a client_credentials token on the protected route', async () => {
    const result = await call(apiUrl, '/me', clientToken);
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ sub: 'demo-service', client_id: 'demo-service', roles: [] });
  });

  it('accepts a password-grant token on the protected route, with the user claims', async () => {
    const result = await call(apiUrl, '/me', userToken);
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ client_id: 'demo-app', email: 'demo@example.com', roles: ['admin'] });
  });

  it('refuses the admin route to a token without the role (403 insufficient_scope)', async () => {
    const result = await call(apiUrl, '/admin', clientToken);
    expect(result).toMatchObject({ status: 403, body: { error: 'insufficient_scope' } });
    expect(result.challenge).toMatch(/^Bearer error="insufficient_scope", error_description="[^"]*admin[^"]*"$/);
  });

  it('opens the admin route to the admin user', async () => {
    expect(await call(apiUrl, '/admin', userToken)).toMatchObject({ status: 200, body: { message: expect.stringContaining('admin') } });
  });

  it('refuses an expired token with 401 expired_token', async () => {
    const { accessTokenTtl } = authority.service.config;
    offset = (accessTokenTtl + 31) * 1000;
    try {
      const result = await call(apiUrl, '/me', userToken);
      expect(result).toMatchObject({ status: 401, body: { error: 'expired_token' } });
      expect(result.challenge).toBe('Bearer error="invalid_token", error_description="the token has expired"');
    } finally {
      offset = 0;
    }
  });

  it('refuses, in an API with another identifier, the tokens meant for this one', async () => {
    const other = createServer(
      createResourceServer({ verifier: createVerifier({ issuer: authority.url, audience: 'https://orders.example.test' }) }).callback(),
    );
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      const address = other.address();
      const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
      const result = await call(base, '/me', clientToken);
      expect(result).toMatchObject({ status: 401, body: { error: 'invalid_token', error_description: 'the token is not meant for this API' } });
    } finally {
      other.closeAllConnections();
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });
});

describe('the example API as its documented start command', () => {
  it('starts with ISSUER/AUDIENCE/PORT and verifies tokens', async () => {
    // PORT=0: the example binds a port the kernel picks and prints it (a port found free here
    // could be taken by another test's server during the seconds tsx takes to start).
    const child = spawnTracked(process.execPath, ['--import', 'tsx', 'examples/resource-server/server.ts'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ISSUER: authority.url, AUDIENCE: authority.service.config.audience, PORT: '0' },
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await waitFor(() => output.includes('listening'), 15_000);
      const base = `http://127.0.0.1:${/listening on http:\/\/[^:]+:(\d+)/.exec(output)![1]}`;
      expect((await call(base, '/public')).status).toBe(200);
      expect((await call(base, '/me', clientToken)).status).toBe(200);
      expect((await call(base, '/admin', clientToken)).status).toBe(403);
      expect((await call(base, '/admin', userToken)).status).toBe(200);
      expect((await call(base, '/me', `${clientToken}x`)).status).toBe(401);
    } finally {
      await stopProcess(child);
    }
    expect(child.exitCode === 0 || child.signalCode === 'SIGTERM').toBe(true);
  });

  it('refuses to start with an ISSUER that is not a URL, saying so', async () => {
    const child = spawnTracked(process.execPath, ['--import', 'tsx', 'examples/resource-server/server.ts'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ISSUER: 'auth.example.test', PORT: '0' },
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/issuer must be an http\(s\) URL/);
  });
});
