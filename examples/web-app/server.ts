/**
 * Starts the example web app (`npm run example:web`). Configuration from the environment:
 *   ISSUER             the authority's issuer; default http://localhost:3000 (its dev default)
 *   API_URL            the example resource server; default http://127.0.0.1:4000
 *   PORT               default 8080; the app listens on 127.0.0.1 (a loopback redirect URI, RFC 8252 §7.3)
 *   WEB_CLIENT_ID, WEB_CLIENT_SECRET   the server app's confidential client (README.md); optional
 *   SPA_CLIENT_ID      the single-page app's public client; default demo-spa (seeded in dev mode)
 *   SCOPE              default openid profile (OpenID Connect; without openid, plain OAuth)
 */
import { createServer } from 'node:http';
import { createWebApp } from './app.js';

const port = Number(process.env.PORT || 8080);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`PORT must be a port number, not ${process.env.PORT}\n`);
  process.exit(1);
}
const { WEB_CLIENT_ID, WEB_CLIENT_SECRET } = process.env;
if (Boolean(WEB_CLIENT_ID) !== Boolean(WEB_CLIENT_SECRET)) {
  process.stderr.write('set both WEB_CLIENT_ID and WEB_CLIENT_SECRET, or neither\n');
  process.exit(1);
}

let issuer: URL;
let api: URL;
try {
  issuer = new URL(process.env.ISSUER || 'http://localhost:3000');
  api = new URL(process.env.API_URL || 'http://127.0.0.1:4000');
} catch {
  process.stderr.write('ISSUER and API_URL must be URLs\n');
  process.exit(1);
}

const origin = `http://127.0.0.1:${port}`;
const app = createWebApp({
  issuer,
  api,
  origin,
  web: WEB_CLIENT_ID && WEB_CLIENT_SECRET ? { clientId: WEB_CLIENT_ID, clientSecret: WEB_CLIENT_SECRET } : undefined,
  spaClientId: process.env.SPA_CLIENT_ID || 'demo-spa',
  scope: process.env.SCOPE || 'openid profile',
});
const server = createServer(app);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`example web app listening on ${origin} (issuer ${issuer.href}, API ${api.href})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
