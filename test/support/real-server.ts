/**
 * The whole authority listening on a free loopback port, as a third-party client or a
 * browser reaches it: its own Redis, a MongoDB database of its own, a temporary key folder
 * and the dev seed with known secrets. `stop` undoes all of it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type Env } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/main.js';
import { CLIENT_SECRET, USER_PASSWORD } from './app.js';
import { captureLogs } from './logs.js';
import { testDatabaseUri } from './mongo.js';
import { freePort } from './processes.js';
import { startTestRedis } from './redis.js';
import { startTlsTerminator } from './tls.js';

export interface RealServer {
  readonly issuer: URL;
  readonly running: RunningServer;
  readonly logs: ReturnType<typeof captureLogs>;
  stop(): Promise<void>;
}

/**
 * `tls`: behind a TLS terminator (`tls.ts`), with an `https://` issuer, as in production;
 * the server itself still listens on plain http on loopback.
 */
export async function startRealServer(mongoUri: string, name: string, env: Env = {}, options: { tls?: boolean } = {}): Promise<RealServer> {
  const redis = await startTestRedis();
  const keysDir = mkdtempSync(join(tmpdir(), `${name}-keys-`));
  const port = await freePort();
  const terminator = options.tls ? await startTlsTerminator() : undefined;
  terminator?.forwardTo(port);
  const issuer = new URL(terminator ? `https://127.0.0.1:${terminator.port}` : `http://127.0.0.1:${port}`);
  const config = parseConfig({
    NODE_ENV: 'test',
    PORT: String(port),
    ISSUER: issuer.origin,
    KEYS_DIR: keysDir,
    REDIS_URL: redis.url,
    MONGODB_URI: testDatabaseUri(mongoUri, name),
    REFRESH_TOKEN_SECRET: 's'.repeat(40),
    DEV_CLIENT_SECRET: CLIENT_SECRET,
    DEV_USER_PASSWORD: USER_PASSWORD,
    ARGON2_MEMORY_KIB: '8192',
    ARGON2_TIME_COST: '1',
    ...env,
  });
  const logs = captureLogs();
  const running = await startServer(config, { logger: logs.logger });
  return {
    issuer,
    running,
    logs,
    async stop() {
      await terminator?.close();
      await running.stop();
      await redis.stop();
      rmSync(keysDir, { recursive: true, force: true });
    },
  };
}
