/**
 * The README's Auth.js (next-auth) and oauth2-proxy snippets, read from the README itself
 * and checked against the discovery document of a server started with their issuer: every
 * endpoint and choice they rely on is one the document offers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';

const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const section = README.slice(README.indexOf('## OpenID Connect'), README.indexOf('## Tokens'));
const block = (lang: string) => {
  const found = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section)?.[1];
  if (found === undefined) throw new Error(`no ${lang} block in the README's OpenID Connect section`);
  return found;
};

let service: TestService;
let discovery: Record<string, unknown>;
const list = (name: string) => discovery[name] as string[];

beforeAll(async () => {
  service = await startTestService({ ISSUER: 'http://localhost:3000' });
  discovery = (await request(service.callback).get('/.well-known/openid-configuration').expect(200)).body as Record<string, unknown>;
});

afterAll(async () => {
  await service?.close();
});

describe('the README snippets against the discovery document', () => {
  it('Auth.js: an oidc provider whose issuer, scope, checks and client authentication the document offers', () => {
    const code = block('ts');
    const value = (name: string) => new RegExp(`${name}: '([^']*)'`).exec(code)?.[1];
    expect(value('type')).toBe('oidc');
    // Auth.js discovers from `${issuer}/.well-known/openid-configuration` and requires the issuer to match exactly.
    expect(value('issuer')).toBe(discovery.issuer);
    expect(
      value('scope')!
        .split(' ')
        .every((scope) => list('scopes_supported').includes(scope)),
    ).toBe(true);
    const checks = JSON.parse(/checks: (\[[^\]]*\])/.exec(code)![1]!.replace(/'/g, '"')) as string[];
    expect(checks).toEqual(expect.arrayContaining(['pkce', 'state', 'nonce']));
    expect(list('code_challenge_methods_supported')).toContain('S256');
    // Auth.js's default client authentication and response type.
    expect(list('token_endpoint_auth_methods_supported')).toContain('client_secret_basic');
    expect(list('response_types_supported')).toContain('code');
    expect(list('id_token_signing_alg_values_supported')).toContain('RS256');
    // The README's client:create line registers what Auth.js sends back to.
    expect(section).toMatch(/--redirect-uri http:\/\/localhost:3001\/api\/auth\/callback\/token-authority/);
  });

  it('oauth2-proxy: a config file whose every line parses, with an issuer, scope and PKCE method the document offers', () => {
    const settings = Object.fromEntries(
      block('toml')
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.startsWith('#'))
        .map((line) => {
          const match = /^([a-z_]+) = (.+)$/.exec(line);
          expect(match, line).not.toBeNull();
          return [match![1]!, JSON.parse(match![2]!) as unknown];
        }),
    );
    expect(settings.provider).toBe('oidc');
    expect(settings.oidc_issuer_url).toBe(discovery.issuer);
    expect((settings.scope as string).split(' ').every((scope) => list('scopes_supported').includes(scope))).toBe(true);
    expect(list('code_challenge_methods_supported')).toContain(settings.code_challenge_method);
    // oauth2-proxy refuses unverified addresses unless told otherwise; ours are all unverified today.
    expect(settings.insecure_oidc_allow_unverified_email).toBe(true);
    expect(discovery.userinfo_endpoint).toBe('http://localhost:3000/oauth/userinfo');
    expect(list('claims_supported')).toEqual(expect.arrayContaining(['email', 'email_verified', 'sub']));
    expect(section).toMatch(/--redirect-uri http:\/\/127\.0\.0\.1:4180\/oauth2\/callback/);
    expect(settings.redirect_url).toBe('http://127.0.0.1:4180/oauth2/callback');
  });
});
