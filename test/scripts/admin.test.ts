/**
 * `client:create` and `user:create` as real processes against the harness's MongoDB, and
 * what they create used through the HTTP API.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';
import { testDatabaseUri } from '../support/mongo.js';

const ROOT = join(import.meta.dirname, '..', '..');
/**
 * For tests that start several script processes one after another: each is a node + tsx
 * start-up and a MongoDB connection, about 1-3 s, more while other test files load the
 * same 2 cores (one CI run took over 20 s for six; another 42 s for the ten of the
 * bad-input test). A timeout here only stops a hang.
 */
const SPAWNS_TIMEOUT_MS = 180_000;
let mongoUri: string;
let service: TestService;

beforeAll(async () => {
  mongoUri = testDatabaseUri(inject('mongoUri'), 'admin-scripts');
  service = await startTestService({ MONGODB_URI: mongoUri });
});
afterAll(async () => {
  await service?.close();
});

function run(
  script: string,
  args: string[],
  { env = {}, stdin = '' }: { env?: Record<string, string>; stdin?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // These drive the direct-to-MongoDB mode; the admin-API mode has its own test (cli-api.test.ts).
    const mode = ['--direct'];
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', script), ...mode, ...args], {
      env: { PATH: process.env.PATH, MONGODB_URI: mongoUri, ARGON2_MEMORY_KIB: '8192', ARGON2_TIME_COST: '1', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end(stdin);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('client:create', () => {
  it('creates a confidential client, prints its secret once, and the secret works', async () => {
    const out = await run('client-create.ts', [
      '--name',
      'Billing API',
      '--grant',
      'client_credentials',
      '--scope',
      'billing:read',
      '--permission',
      'introspect',
    ]);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    const clientId = /client_id=(\S+)/.exec(out.stdout)![1]!;
    const secret = /client_secret=(\S+)/.exec(out.stdout)![1]!;
    expect(clientId).toMatch(/^billing-api-/);
    expect(secret.length).toBeGreaterThanOrEqual(43);
    const res = await request(service.callback).post('/oauth/token').auth(clientId, secret).type('form').send({ grant_type: 'client_credentials' }).expect(200);
    expect(res.body.scope).toBe('billing:read');
    // Only the hash was stored.
    const stored = await service.stores.clients.findById(clientId);
    expect(JSON.stringify(stored)).not.toContain(secret);
  });

  it('creates a public first-party client with no secret', async () => {
    const out = await run('client-create.ts', ['--name', 'Web app', '--public', '--first-party', '--id', 'web-app-1', '--scope', 'profile']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('client_id=web-app-1');
    expect(out.stdout).not.toContain('client_secret');
  });

  it('registers the OpenID Connect logout URIs (--post-logout-redirect-uri, --backchannel-logout-uri)', async () => {
    const out = await run('client-create.ts', [
      '--name',
      'OIDC app',
      '--id',
      'oidc-app-1',
      '--grant',
      'authorization_code',
      '--scope',
      'openid',
      '--redirect-uri',
      'https://rp.example.com/callback',
      '--post-logout-redirect-uri',
      'https://rp.example.com/signed-out',
      '--post-logout-redirect-uri',
      'https://rp.example.com/bye',
      '--backchannel-logout-uri',
      'https://rp.example.com/backchannel-logout',
      '--id-token-signed-response-alg',
      'PS256',
    ]);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(await service.stores.clients.findById('oidc-app-1')).toMatchObject({
      postLogoutRedirectUris: ['https://rp.example.com/signed-out', 'https://rp.example.com/bye'],
      backchannelLogoutUri: 'https://rp.example.com/backchannel-logout',
      idTokenSignedResponseAlg: 'PS256',
    });
  });

  it(
    'refuses bad input with one clear line and a non-zero exit',
    async () => {
      const cases: [string[], RegExp][] = [
        [[], /--name is required/],
        [['--name', 'x', '--grant', 'implicit'], /--grant "implicit"/],
        [['--name', 'x', '--public', '--grant', 'client_credentials'], /public client cannot use client_credentials/],
        [['--name', 'x', '--bogus'], /bogus/],
        [['--name', 'x', '--post-logout-redirect-uri', 'https://rp.example.com/*'], /--post-logout-redirect-uri/],
        [['--name', 'x', '--backchannel-logout-uri', 'https://rp.example.com/logout#frag'], /--backchannel-logout-uri/],
        [
          ['--name', 'x', '--id-token-signed-response-alg', 'none'],
          /--id-token-signed-response-alg "none" is not one of RS256, PS256 \(unsigned ID tokens are never issued\)/,
        ],
        [['--name', 'x', '--id-token-signed-response-alg', 'HS256'], /--id-token-signed-response-alg "HS256" is not one of RS256, PS256$/m],
        [['--name', 'dup', '--id', 'web-app-1', '--public', '--first-party'], /already exists/],
      ];
      for (const [args, message] of cases) {
        const out = await run('client-create.ts', args);
        expect(out.code, args.join(' ')).not.toBe(0);
        expect(out.stderr.trim().split('\n')).toHaveLength(1);
        expect(out.stderr).toMatch(message);
      }
      const noMongo = await run('client-create.ts', ['--name', 'x'], { env: { MONGODB_URI: '' } });
      expect(noMongo.code).toBe(2);
      expect(noMongo.stderr).toMatch(/MONGODB_URI is required/);
    },
    SPAWNS_TIMEOUT_MS,
  );

  it(
    'checks its arguments before it connects: the typo is named, at once, even with MongoDB down or unset',
    async () => {
      const unreachable = { MONGODB_URI: 'mongodb://127.0.0.1:1/none' };
      // The old order answered these with "MONGODB_URI is required" or, 5 s later, "MongoDB is unreachable".
      const cases: [string, string[], Record<string, string>, string][] = [
        ['client-create.ts', ['--name', 'x', '--bogus'], { MONGODB_URI: '' }, "Unknown option '--bogus'"],
        ['client-create.ts', [], unreachable, '--name is required'],
        [
          'client-create.ts',
          ['--name', 'x', '--public'],
          unreachable,
          'the password grant needs --first-party (a --public client gets password and refresh_token unless --grant says otherwise)',
        ],
        ['user-create.ts', ['--email', 'not-an-email', '--password-stdin'], unreachable, '--email must be an email address'],
      ];
      const outs = await Promise.all(cases.map(([script, args, env]) => run(script, args, { env, stdin: 'a long enough password' })));
      outs.forEach((out, index) => {
        expect(out.code, cases[index]![1].join(' ')).not.toBe(0);
        expect(out.stderr).toContain(cases[index]![3]);
      });
    },
    SPAWNS_TIMEOUT_MS,
  );
});

describe('user:create', () => {
  it('reads the password from stdin only, and the user can log in', async () => {
    const out = await run('user-create.ts', ['--email', ' Ops@Example.com ', '--password-stdin', '--role', 'admin', '--role', 'ops'], {
      stdin: 'a stdin password\n',
    });
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toMatch(/email=ops@example\.com roles=admin,ops/);
    expect(out.stdout).not.toContain('a stdin password');
    const res = await request(service.callback).post('/auth/login').send({ email: 'ops@example.com', password: 'a stdin password' }).expect(200);
    expect(res.body.user.roles).toEqual(['admin', 'ops']);
  });

  it(
    'refuses a password on the command line, a short password and a taken email',
    async () => {
      const argv = await run('user-create.ts', ['--email', 'x@example.com', '--password', 'secret-on-argv']);
      expect(argv.code).toBe(2);
      expect(argv.stderr).not.toContain('secret-on-argv');
      const missing = await run('user-create.ts', ['--email', 'x@example.com']);
      expect(missing.stderr).toMatch(/--password-stdin is required/);
      const short = await run('user-create.ts', ['--email', 'x@example.com', '--password-stdin'], { stdin: 'short' });
      expect(short.code).toBe(1);
      expect(short.stderr).toMatch(/8 to 128 characters/);
      const taken = await run('user-create.ts', ['--email', 'ops@example.com', '--password-stdin'], { stdin: 'another password' });
      expect(taken.code).toBe(1);
      expect(taken.stderr).toMatch(/already exists/);
    },
    SPAWNS_TIMEOUT_MS,
  );
});
