/** `npm run events:tail` as a real process against a test Redis: the last events, then new ones live, then a clean stop. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { stampEvent, toStreamFields } from '../../src/events/emitter.js';
import { SECURITY_EVENTS_STREAM, type NewEvent, type SecurityEvent } from '../../src/events/types.js';
import { cryptoRandom } from '../../src/random.js';
import { startTestRedis, type TestRedis } from '../support/redis.js';
import { eventually } from './support.js';

const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'events-tail.ts');
let redis: TestRedis;

beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function append(email: string, type: 'login.failed' | 'login.succeeded' = 'login.failed'): Promise<SecurityEvent> {
  const event = (
    type === 'login.failed'
      ? { type, actor: { type: 'anonymous', ip: '198.51.100.7' }, subject: { type: 'user', email }, data: { reason: 'wrong_password' } }
      : { type, actor: { type: 'user', id: 'u1' }, subject: { type: 'user', id: 'u1', email }, data: { user_id: 'u1' } }
  ) as NewEvent;
  const stamped = stampEvent(event, { clock: systemClock, random: cryptoRandom });
  await redis.client.xadd(SECURITY_EVENTS_STREAM, '*', ...Object.entries(toStreamFields(stamped)).flat());
  return stamped;
}

function tail(args: string[], env: Record<string, string>): { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

describe('events:tail', () => {
  it('prints the last events, then new ones as they are appended, until stopped', async () => {
    await append('old@example.com');
    const recent = await append('recent@example.com');
    const run = tail(['--last', '1'], { REDIS_URL: redis.url });
    try {
      await eventually(() => run.err().includes('following'), 20_000);
      expect(run.out()).toContain(recent.time);
      expect(run.out()).toContain('user:recent@example.com');
      expect(run.out()).not.toContain('old@example.com');
      const live = await append('live@example.com');
      await eventually(() => run.out().includes('user:live@example.com'), 10_000);
      const line = run.out().trim().split('\n').at(-1)!;
      expect(line).toMatch(
        new RegExp(`^${live.time}\\s+login\\.failed\\s+user:live@example\\.com\\s+by anonymous 198\\.51\\.100\\.7\\s+\\{"reason":"wrong_password"\\}$`),
      );
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exit).toBe(0);
  }, 40_000);

  it('--json --type prints only those events, as JSON', async () => {
    const run = tail(['--last', '0', '--json', '--type', 'login.succeeded'], { REDIS_URL: redis.url });
    try {
      await eventually(() => run.err().includes('following'), 20_000);
      await append('skipped@example.com');
      const wanted = await append('json@example.com', 'login.succeeded');
      await eventually(() => run.out().includes(wanted.id), 10_000);
      expect(
        run
          .out()
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line)),
      ).toEqual([wanted]);
    } finally {
      run.child.kill('SIGINT');
    }
    expect(await run.exit).toBe(0);
  }, 40_000);

  it('refuses to run without Redis, or with a bad argument, in one line', async () => {
    const noRedis = tail([], {});
    expect(await noRedis.exit).toBe(2);
    expect(noRedis.err()).toMatch(/^events:tail: REDIS_URL \(or REDIS_CLUSTER_NODES\) is required/);
    const badType = tail(['--type', 'nope'], { REDIS_URL: redis.url });
    expect(await badType.exit).toBe(2);
    expect(badType.err().trim().split('\n')).toHaveLength(1);
  }, 40_000);
});
