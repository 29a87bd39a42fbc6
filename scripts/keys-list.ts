/**
 * `npm run keys:list [-- --json]`: every key in KEYS_DIR with its kid, alg, state, dates and
 * when it may next change state. Read-only: takes no lock, prints no key material.
 */
import { parseArgs } from 'node:util';
import { systemClock } from '../src/clock.js';
import { parseConfig } from '../src/config.js';
import { manifestEntry } from '../src/keys/key-files.js';
import { loadKeyDir, promotableAt, removableAt } from '../src/keys/index.js';
import { describeError, keyTable, UsageError } from '../src/keys/report.js';
import { answerHelp, runScript } from './run.js';

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { json: { type: 'boolean', default: false } } }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (usage: keys:list [--json])`);
  }
  const config = parseConfig(process.env);
  const state = await loadKeyDir(config.keysDir, { production: config.production });
  for (const warning of state.warnings) console.error(`warning: ${warning}`);
  const now = systemClock.now();
  if (values.json) {
    const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
    const rows = state.keys.map((key) => ({
      ...manifestEntry(key),
      promotableAt: key.state === 'next' ? iso(promotableAt(key, config)) : null,
      removableAt: key.state === 'retired' ? iso(removableAt(key, config)) : null,
    }));
    console.log(JSON.stringify(rows, null, 2));
  } else {
    console.log(keyTable(state.keys, now, config));
  }
  return 0;
}

const USAGE = `usage: npm run keys:list [-- --json]
Lists the keys in KEYS_DIR with kid, alg, state, dates and when each may next change state (--json: as JSON).`;

if (!answerHelp(USAGE)) runScript('keys:list', () => main(process.argv.slice(2)), describeError);
