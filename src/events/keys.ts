/** Events of one key rotation step (`npm run keys:rotate`), read from what the step did. */
import type { RotateKeysResult } from '../keys/rotation.js';
import type { Actor, NewEvent } from './types.js';

const ROTATE_SCRIPT: Actor = { type: 'operator', id: 'keys:rotate' };

/** One event per step of `result` (none for a dry run), and `key.emergency_rotated` for `--emergency`. */
export function keyEvents(result: RotateKeysResult, options: { emergencyKid?: string | undefined } = {}): NewEvent[] {
  if (result.after === undefined) return [];
  const events: NewEvent[] = [];
  let created = 0;
  let successor: string | null = null;
  for (const step of result.plan.steps) {
    switch (step.action) {
      case 'create': {
        const key = result.created[created++];
        if (!key) break;
        if (key.state === 'active') successor = key.kid;
        events.push({ type: 'key.created', actor: ROTATE_SCRIPT, subject: { type: 'key', id: key.kid }, data: { alg: key.alg, state: key.state } });
        break;
      }
      case 'promote':
        successor = step.kid;
        events.push({ type: 'key.promoted', actor: ROTATE_SCRIPT, subject: { type: 'key', id: step.kid }, data: {} });
        break;
      case 'retire':
        events.push({ type: 'key.retired', actor: ROTATE_SCRIPT, subject: { type: 'key', id: step.kid }, data: {} });
        break;
      case 'remove':
        events.push({ type: 'key.removed', actor: ROTATE_SCRIPT, subject: { type: 'key', id: step.kid }, data: { reason: step.reason } });
        break;
    }
  }
  if (options.emergencyKid !== undefined) {
    events.push({ type: 'key.emergency_rotated', actor: ROTATE_SCRIPT, subject: { type: 'key', id: options.emergencyKid }, data: { successor } });
  }
  return events;
}
