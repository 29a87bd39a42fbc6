/**
 * `npm run keys:rotate [-- --alg RS256|PS256|ES256|EdDSA] [--dry-run]`
 * `npm run keys:rotate -- --emergency --kid <kid>`
 *
 * One safe, idempotent step of key rotation (the rules are in src/keys/rotation.ts), fit for
 * a daily cron. Reads the same environment as the server. Exit 0 when the step succeeded or
 * there is nothing to do yet; 1 on an error, 2 on bad arguments, each with one line on stderr.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../src/clock.js';
import { parseConfig } from '../src/config.js';
import { clearDevMade, readDevMade } from '../src/keys/dev-made.js';
import { isKeyAlg, KEY_ALGS, rotateKeys } from '../src/keys/index.js';
import { ensureRefreshSecret, readRefreshSecret, REFRESH_SECRET_FILE } from '../src/keys/refresh-secret.js';
import { describeError, rotationReport, UsageError } from '../src/keys/report.js';
import { keyEvents } from '../src/events/keys.js';
import { publishScriptEvents } from '../src/events/script-events.js';
import { cryptoRandom } from '../src/random.js';
import { answerHelp, runScript } from './run.js';

const USAGE = `usage: keys:rotate [--alg ${KEY_ALGS.join('|')}] [--dry-run] | --emergency --kid <kid>`;

/**
 * A kid is a base64url thumbprint and may begin with '-', which parseArgs would read as an
 * option: bind the value that follows `--kid` to it explicitly.
 */
function bindKidValue(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    const value = argv[index + 1];
    if (arg === '--kid' && value !== undefined) {
      out.push(`--kid=${value}`);
      index += 1;
    } else {
      out.push(arg);
    }
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: bindKidValue(argv),
      strict: true,
      allowPositionals: false,
      options: {
        alg: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        emergency: { type: 'boolean', default: false },
        kid: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (${USAGE})`);
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const alg = values.alg;
  if (alg !== undefined && !isKeyAlg(alg)) throw new UsageError(`--alg must be one of ${KEY_ALGS.join(', ')}, not "${alg}"`);
  if (values.emergency && !values.kid) throw new UsageError('--emergency needs --kid <kid> of the compromised key (see `npm run keys:list`)');
  if (!values.emergency && values.kid !== undefined) throw new UsageError('--kid is only used with --emergency');

  const config = parseConfig(process.env);
  const dryRun = values['dry-run'];
  // The plan reads the clock under the lock, not before waiting up to 15 s for it, and the
  // dates written are taken again at commit (src/keys/rotation.ts); the report shows those.
  const result = await rotateKeys({
    dir: config.keysDir,
    clock: systemClock,
    production: config.production,
    jwksMaxAge: config.jwksMaxAge,
    keyPromotionMargin: config.keyPromotionMargin,
    accessTokenTtl: config.accessTokenTtl,
    clockSkew: config.clockSkew,
    alg,
    emergencyKid: values.emergency ? values.kid : undefined,
    dryRun,
  });
  for (const warning of result.warnings) console.error(`warning: ${warning}`);
  // Security events (key created / promoted / retired / removed / emergency-rotated) go to
  // the servers' event stream when REDIS_URL is set; see src/events/script-events.ts.
  await publishScriptEvents(config, keyEvents(result, { emergencyKid: values.emergency ? values.kid : undefined }), {
    clock: systemClock,
    random: cryptoRandom,
    print: (line) => console.error(line),
  });
  for (const line of rotationReport(result, { dryRun, now: result.committedAt ?? result.plannedAt, timings: config })) console.log(line);
  // A refresh-token secret a dev server made has no place in production: replaced below (or
  // simply removed when REFRESH_TOKEN_SECRET is set and the file is unused).
  if (config.production && !dryRun && (await readDevMade(config.keysDir)).includes(REFRESH_SECRET_FILE)) {
    await rm(join(config.keysDir, REFRESH_SECRET_FILE), { force: true });
    await clearDevMade(config.keysDir, [REFRESH_SECRET_FILE]);
    console.log(`removed ${join(config.keysDir, REFRESH_SECRET_FILE)}: a development server made it (every refresh token it keyed is void)`);
  }
  // Without REFRESH_TOKEN_SECRET, production servers read the refresh-token MAC key from
  // KEYS_DIR and never make one themselves (see src/keys/refresh-secret.ts).
  if (!config.refreshTokenSecret) {
    const file = join(config.keysDir, REFRESH_SECRET_FILE);
    if (dryRun) {
      if ((await readRefreshSecret(config.keysDir, { production: config.production })) === undefined)
        console.log(`would create ${file} (the refresh-token MAC key; REFRESH_TOKEN_SECRET is unset)`);
    } else if ((await ensureRefreshSecret(config.keysDir, { production: config.production })).created) {
      console.log(`created ${file}: the refresh-token MAC key, used while REFRESH_TOKEN_SECRET is unset; back it up with the keys`);
    }
  }
  return 0;
}

if (
  !answerHelp(`${USAGE}
One safe, idempotent step of key rotation, fit for a daily cron; --dry-run prints the step without taking it;
--emergency --kid K replaces a compromised key at once (K leaves the JWKS and never signs again).`)
)
  runScript('keys:rotate', () => main(process.argv.slice(2)), describeError);
