/**
 * The whole service as HTTP tests use it: `createService` from the entry module, with the
 * config a test asks for (real Redis / Mongo URLs, or the embedded stores), dev seeding
 * with known secrets, a temporary key directory and captured logs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/clock.js';
import { parseConfig, type Config, type Env } from '../../src/config.js';
import { createService, type Service } from '../../src/compose.js';
import { captureLogs } from './logs.js';

export const CLIENT_SECRET = 'test-service-secret-0123456789abcdef';
export const USER_PASSWORD = 'correct horse battery staple';
export const USER_EMAIL = 'demo@example.com';

export interface TestService extends Service {
  readonly config: Config;
  readonly callback: ReturnType<Service['app']['callback']>;
  readonly logs: ReturnType<typeof captureLogs>;
  readonly basic: string;
}

export async function startTestService(env: Env = {}, options: { clock?: Clock; print?: (text: string) => void } = {}): Promise<TestService> {
  const keysDir = mkdtempSync(join(tmpdir(), 'keys-'));
  const config = parseConfig({
    NODE_ENV: 'test',
    ISSUER: 'http://auth.test',
    KEYS_DIR: keysDir,
    DEV_CLIENT_SECRET: CLIENT_SECRET,
    DEV_USER_PASSWORD: USER_PASSWORD,
    REFRESH_TOKEN_SECRET: 'r'.repeat(40),
    // Cheap argon2 keeps the suite fast; parameters are covered by their own tests.
    ARGON2_MEMORY_KIB: '8192',
    ARGON2_TIME_COST: '1',
    LOG_LEVEL: 'debug',
    // Suites register many users from one address; the budget has its own test.
    REGISTER_IP_RATE_LIMIT: '10000/1h',
    ...env,
  });
  const logs = captureLogs();
  const service = await createService(config, {
    logger: logs.logger,
    ...(options.clock ? { clock: options.clock } : {}),
    // Dev-mode mail goes nowhere unless a test asks to see it.
    print: options.print ?? (() => undefined),
  });
  return {
    ...service,
    config,
    logs,
    callback: service.app.callback(),
    basic: `Basic ${Buffer.from(`demo-service:${CLIENT_SECRET}`).toString('base64')}`,
    async close() {
      await service.close();
      rmSync(keysDir, { recursive: true, force: true });
    },
  };
}
