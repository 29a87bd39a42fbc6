/** The operator's settings of the browser sign-in: product name, stylesheet, logo, REQUIRE_PAR. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/app.js';

let dir: string;
let service: TestService;
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brand-'));
  writeFileSync(join(dir, 'brand.css'), ':root { --accent: #5b21b6; }');
  writeFileSync(join(dir, 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
  service = await startTestService({
    PRODUCT_NAME: 'Example Login',
    PAGES_STYLESHEET: join(dir, 'brand.css'),
    PAGES_LOGO: join(dir, 'logo.svg'),
    REQUIRE_PAR: 'true',
  });
});
afterAll(async () => {
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sign-in settings', () => {
  it("serves the operator's stylesheet and logo, and names the product on the pages", async () => {
    const css = await request(service.callback).get('/assets/pages.css').expect(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.text).toBe(':root { --accent: #5b21b6; }');
    const logo = await request(service.callback).get('/assets/logo').expect(200);
    expect(logo.headers['content-type']).toBe('image/svg+xml');
    const page = await request(service.callback).get('/oauth/authorize').query({ client_id: 'nobody', redirect_uri: 'https://x.example/cb' }).expect(400);
    expect(page.text).toContain('Example Login');
    expect(page.text).toContain('src="/assets/logo"');
  });

  it('makes every client push its requests with REQUIRE_PAR, and says so in the metadata', async () => {
    const metadata = await request(service.callback).get('/.well-known/oauth-authorization-server').expect(200);
    expect(metadata.body.require_pushed_authorization_requests).toBe(true);
    const res = await request(service.callback)
      .get('/oauth/authorize')
      .query({
        client_id: 'demo-spa',
        redirect_uri: 'http://127.0.0.1:5000/callback',
        response_type: 'code',
        code_challenge: CHALLENGE,
        code_challenge_method: 'S256',
        state: 's',
      })
      .expect(302);
    expect(Object.fromEntries(new URL(res.headers.location!).searchParams)).toMatchObject({ error: 'invalid_request', state: 's', iss: 'http://auth.test' });
  });

  it('refuses to start with a stylesheet it cannot read, naming the variable', async () => {
    await expect(startTestService({ PAGES_STYLESHEET: join(dir, 'missing.css') })).rejects.toThrow(/PAGES_STYLESHEET: cannot read .*missing\.css \(ENOENT\)/);
  });
});
