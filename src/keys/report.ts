/** What the key scripts print: plain text for operators, built here so tests can read it. */
import { ConfigError } from '../config.js';
import { KeyRingError } from './errors.js';
import type { KeyMeta } from './key-files.js';
import { formatDuration, promotableAt, removableAt, type RotateKeysResult, type RotationStep, type RotationTimings } from './rotation.js';

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** The lines `keys:rotate` prints for one step. */
export function rotationReport(result: RotateKeysResult, { dryRun, now, timings }: { dryRun: boolean; now: number; timings: RotationTimings }): string[] {
  const prefix = dryRun ? '[dry run] ' : '';
  const verb = (done: string, planned: string) => (dryRun ? planned : done);
  const created = [...result.created];
  const describe = (step: RotationStep): string => {
    switch (step.action) {
      case 'create': {
        const kid = created.shift()?.kid;
        const when = step.state === 'next' ? `; it may be promoted after ${iso(promotableAt({ createdAt: now } as KeyMeta, timings))}` : '';
        return `${verb('created', 'would create')} ${step.state} ${step.alg} key${kid ? ` ${kid}` : ''}${when}`;
      }
      case 'promote':
        return `${verb('promoted', 'would promote')} ${step.kid} to active: it signs new tokens`;
      case 'retire':
        return `${verb('retired', 'would retire')} ${step.kid}: published until its last token expires, removable after ${iso(removableAt({ retiredAt: now } as KeyMeta, timings)!)}`;
      case 'remove':
        if (step.reason === 'compromised') return `${verb('removed', 'would remove')} compromised key ${step.kid}`;
        if (step.reason === 'development') return `${verb('removed', 'would remove')} ${step.kid}: a development server made it, production does not use it`;
        return `${verb('removed', 'would remove')} retired key ${step.kid}: every token it signed has expired`;
    }
  };
  const lines = result.plan.steps.map((step) => prefix + describe(step));
  lines.push(...result.plan.notes.map((note) => prefix + note));
  if (result.plan.steps.length === 0 && result.plan.notes.length === 0) lines.push(`${prefix}nothing to do`);
  return lines;
}

/** `keys:list`: one row per key, with when its next transition may happen. */
export function keyTable(keys: readonly KeyMeta[], now: number, timings: RotationTimings): string {
  if (keys.length === 0) return 'no keys (run `npm run keys:rotate` to create the first one)';
  const order = { active: 0, next: 1, retired: 2 } as const;
  const rows = [...keys]
    .sort((a, b) => order[a.state] - order[b.state] || b.createdAt - a.createdAt)
    .map((key) => [
      key.kid,
      key.alg,
      key.state,
      iso(key.createdAt),
      key.activatedAt ? iso(key.activatedAt) : '-',
      key.retiredAt ? iso(key.retiredAt) : '-',
      transition(key, now, timings),
    ]);
  const table = [['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATED', 'RETIRED', 'NEXT TRANSITION'], ...rows];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function transition(key: KeyMeta, now: number, timings: RotationTimings): string {
  const at = key.state === 'next' ? promotableAt(key, timings) : key.state === 'retired' ? removableAt(key, timings) : undefined;
  if (at === undefined) return 'signing';
  const what = key.state === 'next' ? 'promotable' : 'removable';
  return at <= now ? `${what} now` : `${what} after ${iso(at)} (in ${formatDuration((at - now) / 1000)})`;
}

/** Bad arguments: printed with the usage, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** One line and an exit code for anything a key script can fail with; never a stack trace. */
export function describeError(err: unknown): { message: string; code: number } {
  if (err instanceof UsageError) return { message: err.message, code: 2 };
  if (err instanceof KeyRingError || err instanceof ConfigError) return { message: err.message, code: 1 };
  const message = err instanceof Error ? err.message : String(err);
  return { message: `unexpected error: ${message.split('\n')[0]}`, code: 1 };
}
