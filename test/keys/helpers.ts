/** Shared set-up of the key tests: temporary key directories and a pool of reusable keys. */
import type { JsonWebKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePrivateJwk, type KeyAlg } from '../../src/keys/algorithms.js';
import type { KeyGenerator, RotationTimings } from '../../src/keys/index.js';
import { spawnTracked } from '../support/processes.js';

/** The defaults of the configuration, in seconds. */
export const TIMINGS: RotationTimings = Object.freeze({ jwksMaxAge: 300, keyPromotionMargin: 60, accessTokenTtl: 900, clockSkew: 60 });

export const MINUTE = 60_000;

const created: string[] = [];

/** A fresh `<tmp>/keys` path (not created: rotation creates it, as it would KEYS_DIR). */
export async function tempKeysDir(): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'keys-test-'));
  created.push(base);
  return join(base, 'keys');
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/**
 * Hands out distinct private keys, generating RSA ones ahead in the background: a test that
 * walks several rotations does not wait ~100 ms per key on the critical path.
 */
export function keyPool(): KeyGenerator {
  const spare = new Map<KeyAlg, Promise<JsonWebKey>[]>();
  return async (alg) => {
    const queue = spare.get(alg) ?? [];
    spare.set(alg, queue);
    while (queue.length < 2) queue.push(generatePrivateJwk(alg));
    const key = queue.shift()!;
    queue.push(generatePrivateJwk(alg));
    return key;
  };
}

export const REPO_ROOT = join(import.meta.dirname, '..', '..');

export interface ScriptResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `scripts/<name>.ts` as the npm script would, with `env` over a minimal environment. */
export function runScript(name: 'keys-rotate' | 'keys-list', args: readonly string[], env: Record<string, string>): Promise<ScriptResult> {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', join('scripts', `${name}.ts`), ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'development', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
