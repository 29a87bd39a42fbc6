/**
 * The default log destination (buffered stdout), seen from outside a real process: lines
 * are not lost on exit and do not wait long when traffic is low.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const LOG_MODULE = join(import.meta.dirname, '..', 'src', 'log.ts');

/** Runs `body` (with `logger` in scope) in a child process; resolves with its stdout and when the first line arrived. */
function runLogger(body: string): Promise<{ stdout: string; firstLineAfterMs: number | undefined; code: number | null }> {
  const script = `import { createLogger } from ${JSON.stringify(LOG_MODULE)}; const logger = createLogger({ level: 'info' }); ${body}`;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let stdout = '';
    let firstLineAfterMs: number | undefined;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (chunk: Buffer) => {
      firstLineAfterMs ??= Date.now() - started;
      stdout += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ stdout, firstLineAfterMs, code }));
  });
}

describe('the default log destination', () => {
  it('writes out what it holds when the process exits right after logging', async () => {
    const { stdout, code } = await runLogger(`for (let i = 0; i < 3; i++) logger.fatal({ i }, 'going down'); process.exit(3);`);
    expect(code).toBe(3);
    expect(
      stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).i),
    ).toEqual([0, 1, 2]);
  });

  it('writes a lone line within about a second, while the process keeps running', async () => {
    const { stdout, firstLineAfterMs } = await runLogger(`logger.info('alone'); setTimeout(() => process.exit(0), 6000);`);
    expect(JSON.parse(stdout.trim()).msg).toBe('alone');
    // Start-up of node + tsx is included (about 1 s); the line must not wait for the exit at 6 s.
    expect(firstLineAfterMs).toBeLessThan(5000);
  });
});
