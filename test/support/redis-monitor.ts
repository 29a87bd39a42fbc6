/**
 * What a MONITOR-based round-trip count leaves out: the client's and the test's own
 * housekeeping, and the commands of the service's background workers, which poll Redis on
 * their own whatever a request does (the mail outbox, the back-channel logout queue, and the
 * consumer groups reading the security event stream for webhooks and metrics).
 */

/** Commands that are housekeeping of the client or of this test, not work of a request. */
export const HOUSEKEEPING = new Set(['info', 'config', 'cluster', 'ping', 'command', 'client', 'readonly', 'select', 'hello', 'subscribe', 'monitor']);

/** Stream consumer commands: only background readers send them, never a request. */
const CONSUMER_COMMANDS = new Set(['xreadgroup', 'xautoclaim', 'xclaim', 'xack', 'xpending', 'xgroup', 'xread']);

/** Keys of the background workers' own queues. */
const WORKER_KEY = /^(\{mail\}|bcl:)/;

/** The first key a command names (after the script and the key count for EVAL/EVALSHA). */
export const firstKey = (args: readonly string[]) => (/^eval/i.test(args[0]!) ? args[3] : args[1]) ?? '';

/** True for a command a request did not send (see above), given MONITOR's `args` and `source`. */
export function isBackground(args: readonly string[], source: string): boolean {
  const name = args[0]!.toLowerCase();
  return source === 'lua' || HOUSEKEEPING.has(name) || CONSUMER_COMMANDS.has(name) || WORKER_KEY.test(firstKey(args));
}
