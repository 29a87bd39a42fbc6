/**
 * Starts the example API. Configuration from the environment:
 *   ISSUER    the authority's issuer URL; default http://localhost:3000 (the authority's dev default)
 *   AUDIENCE  this API's identifier as it appears in `aud` (default: ISSUER, the authority's default audience)
 *   PORT      default 4000;  HOST  default 127.0.0.1
 *   CORS_ORIGINS  comma-separated origins of browser apps that may call it (default: none)
 */
import { createServer } from 'node:http';
import { createVerifier } from '../../packages/verifier/src/index.js';
import { createResourceServer } from './app.js';

const issuer = process.env.ISSUER || 'http://localhost:3000';
const port = Number(process.env.PORT || 4000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`PORT must be a port number, not ${process.env.PORT}\n`);
  process.exit(1);
}
const host = process.env.HOST || '127.0.0.1';

let verifier;
try {
  verifier = createVerifier({
    issuer,
    audience: process.env.AUDIENCE || issuer,
    onError: (err) => process.stderr.write(`verifier: ${err.message}\n`),
  });
} catch (err) {
  process.stderr.write(`example API: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

const corsOrigins = (process.env.CORS_ORIGINS ?? '')
  .split(',')
  .map((origin) => origin.trim())
  .filter(Boolean);
const server = createServer(createResourceServer({ verifier, corsOrigins }).callback());
server.listen(port, host, () => {
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  process.stdout.write(`example API listening on http://${host}:${actual} (issuer ${issuer})\n`);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
