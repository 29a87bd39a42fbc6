import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { keyFileName, rotateKeys, type CreatedKey } from '../../src/keys/index.js';
import { removeTempDirs, runScript, tempKeysDir, TIMINGS } from './helpers.js';

let dir: string;
let created: readonly CreatedKey[];

beforeAll(async () => {
  dir = await tempKeysDir();
  ({ created } = await rotateKeys({ dir, clock: manualClock(Date.now()), production: false, ...TIMINGS, alg: 'EdDSA' }));
});
afterAll(removeTempDirs);

const oneLine = (text: string) => {
  expect(text.trim().split('\n')).toHaveLength(1);
  expect(text).not.toMatch(/\n\s+at /);
};

describe('keys:list', () => {
  it('prints a table of kid, alg, state and dates, or JSON', async () => {
    const [table, json] = await Promise.all([runScript('keys-list', [], { KEYS_DIR: dir }), runScript('keys-list', ['--json'], { KEYS_DIR: dir })]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^KID\s+ALG\s+STATE\s+CREATED\s+ACTIVATED\s+RETIRED\s+NEXT TRANSITION$/);
    expect(lines[1]).toMatch(new RegExp(`^${created[0]!.kid}\\s+EdDSA\\s+active\\s+.*signing$`));
    expect(lines[2]).toMatch(new RegExp(`^${created[1]!.kid}\\s+EdDSA\\s+next\\s+.*promotable after \\S+ \\(in (6m|5m 5\\ds)\\)$`));
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ kid: created[0]!.kid, alg: 'EdDSA', state: 'active', retiredAt: null, removableAt: null }),
      expect.objectContaining({ kid: created[1]!.kid, state: 'next', activatedAt: null, promotableAt: expect.any(String) }),
    ]);
  });
});

describe('keys:rotate --emergency --kid', () => {
  it('takes a kid that begins with a dash (base64url thumbprints can) as the value of --kid', async () => {
    const out = await runScript('keys-rotate', ['--emergency', '--kid', '-abcdefghijklmnopqrstuvwxyz0123456789ABCDEF'], { KEYS_DIR: dir });
    expect(out.code).toBe(1);
    // Parsed as a kid (no such key), not refused as an ambiguous option.
    expect(out.stderr).toMatch(/no key has kid -abcdefghij/);
    expect(out.stderr).not.toMatch(/ambiguous/);
  });
});

describe('bad input: one line on stderr, non-zero exit, no stack trace', () => {
  it('bad arguments and bad environment', async () => {
    const [badAlg, noKid, unknown, badEnv, unknownKid] = await Promise.all([
      runScript('keys-rotate', ['--alg', 'HS256'], { KEYS_DIR: dir }),
      runScript('keys-rotate', ['--emergency'], { KEYS_DIR: dir }),
      runScript('keys-rotate', ['--force'], { KEYS_DIR: dir }),
      runScript('keys-rotate', [], { KEYS_DIR: dir, JWKS_MAX_AGE: 'soon' }),
      runScript('keys-rotate', ['--emergency', '--kid', 'nope'], { KEYS_DIR: dir }),
    ]);
    expect(badAlg).toMatchObject({ code: 2, stdout: '' });
    expect(badAlg.stderr).toMatch(/^keys:rotate: --alg must be one of RS256, PS256, ES256, EdDSA, not "HS256"/);
    expect(noKid.code).toBe(2);
    expect(noKid.stderr).toMatch(/--emergency needs --kid/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--force/);
    expect(badEnv.code).toBe(1);
    expect(badEnv.stderr).toMatch(/JWKS_MAX_AGE/);
    expect(unknownKid.code).toBe(1);
    expect(unknownKid.stderr).toMatch(/no key has kid nope/);
    for (const run of [badAlg, noKid, unknown, badEnv, unknownKid]) oneLine(run.stderr);
  });

  it('a malformed key file, and a loose mode in production, name the file', async () => {
    const broken = await tempKeysDir();
    const loose = await tempKeysDir();
    await rotateKeys({ dir: broken, clock: manualClock(), production: false, ...TIMINGS, alg: 'EdDSA' });
    const { created: looseKeys } = await rotateKeys({ dir: loose, clock: manualClock(), production: false, ...TIMINGS, alg: 'EdDSA' });
    await writeFile(join(broken, 'keyring.json'), '{"version":1,"keys":[{"kid":', { mode: 0o600 });
    const looseFile = join(loose, keyFileName(looseKeys[0]!.kid));
    await chmod(looseFile, 0o640);
    const production = {
      NODE_ENV: 'production',
      MONGODB_URI: 'mongodb://db.test/x',
      REDIS_URL: 'redis://cache.test',
      ISSUER: 'https://as.test',
      REFRESH_TOKEN_SECRET: 'x'.repeat(32),
    };
    const [malformed, strict, lenient] = await Promise.all([
      runScript('keys-rotate', [], { KEYS_DIR: broken }),
      runScript('keys-list', [], { KEYS_DIR: loose, ...production }),
      runScript('keys-list', [], { KEYS_DIR: loose }),
    ]);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toBe(`keys:rotate: ${join(broken, 'keyring.json')}: not valid JSON\n`);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(new RegExp(`^keys:list: ${looseFile}: mode 0640`));
    oneLine(strict.stderr);
    expect(lenient.code).toBe(0);
    expect(lenient.stderr).toMatch(/^warning: .*mode 0640.*an error in production/);
  });
});
