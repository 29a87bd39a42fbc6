/**
 * The real token authority (`createService` with the embedded stores and the dev seed)
 * listening on a real port, its issuer being its own URL so that discovery works: what a
 * resource server meets in production, minus Redis and MongoDB.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Env } from '../../src/config.js';
import { CLIENT_SECRET, startTestService, USER_EMAIL, USER_PASSWORD, type TestService } from '../support/app.js';

export interface RunningAuthority {
  readonly url: string;
  readonly service: TestService;
  clientCredentialsToken(): Promise<string>;
  passwordToken(): Promise<string>;
  revoke(token: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startAuthority(env: Env = {}): Promise<RunningAuthority> {
  // The issuer is the server's own URL and must be known before the service is built: bind
  // first (the kernel picks the port, so no other test can take it meanwhile), then hand the
  // requests to the service once it exists.
  const ready: { service?: TestService } = {};
  const server: Server = createServer((req, res) => (ready.service ? ready.service.callback(req, res) : res.writeHead(503).end()));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const service = await startTestService({ ISSUER: url, ...env });
  ready.service = service;

  async function token(body: Record<string, string>, headers: Record<string, string> = {}): Promise<string> {
    const response = await fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(body),
    });
    const json = (await response.json()) as { access_token?: string };
    if (response.status !== 200 || typeof json.access_token !== 'string') throw new Error(`token request failed: ${response.status} ${JSON.stringify(json)}`);
    return json.access_token;
  }

  return {
    url,
    service,
    clientCredentialsToken: () => token({ grant_type: 'client_credentials' }, { authorization: service.basic }),
    passwordToken: () => token({ grant_type: 'password', client_id: 'demo-app', username: USER_EMAIL, password: USER_PASSWORD }),
    async revoke(accessToken) {
      const response = await fetch(`${url}/oauth/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: service.basic },
        body: new URLSearchParams({ token: accessToken, token_type_hint: 'access_token' }),
      });
      if (response.status !== 200) throw new Error(`revocation failed: ${response.status}`);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
    },
  };
}

export { CLIENT_SECRET };
