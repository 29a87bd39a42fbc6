import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmod, cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.js';
import { KeyRing, KeyRingError, keyFileName, loadKeyDir, loadKeyRing, MANIFEST_FILE, rotateKeys } from '../../src/keys/index.js';
import { removeTempDirs, tempKeysDir, TIMINGS } from './helpers.js';

let template: string;
let activeKid: string;
let nextKid: string;

beforeAll(async () => {
  template = await tempKeysDir();
  const { created } = await rotateKeys({ dir: template, clock: manualClock(), production: true, ...TIMINGS });
  activeKid = created.find((key) => key.state === 'active')!.kid;
  nextKid = created.find((key) => key.state === 'next')!.kid;
});
afterAll(removeTempDirs);

/** A private copy of a valid two-key directory (active + next), modes 0700/0600. */
async function copyOfValidDir(): Promise<string> {
  const dir = await tempKeysDir();
  await cp(template, dir, { recursive: true });
  return dir;
}

async function editManifest(dir: string, edit: (manifest: { keys: Record<string, unknown>[] }) => void): Promise<string> {
  const file = join(dir, MANIFEST_FILE);
  const manifest = JSON.parse(await readFile(file, 'utf8')) as { keys: Record<string, unknown>[] };
  edit(manifest);
  await writeFile(file, JSON.stringify(manifest), { mode: 0o600 });
  return file;
}

async function loadError(dir: string, production = false): Promise<KeyRingError> {
  const err = await loadKeyRing(dir, { production }).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(err).toBeInstanceOf(KeyRingError);
  return err as KeyRingError;
}

describe('loading a key directory', () => {
  it('loads a valid directory: active first, JWKS with public members only', async () => {
    const ring = await loadKeyRing(await copyOfValidDir(), { production: true });
    expect(ring.active.kid).toBe(activeKid);
    expect(ring.keys.map((key) => key.kid)).toEqual([activeKid, nextKid]);
    const jwks = JSON.parse(ring.jwks.body.toString()) as { keys: Record<string, unknown>[] };
    for (const key of jwks.keys) {
      expect(Object.keys(key).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
      expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    }
    expect(ring.jwks.etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/);
    expect(ring.warnings).toEqual([]);
    // Every published key verifies, `next` included: another instance may already sign with it.
    expect(ring.verificationKey(nextKid)).toMatchObject({ kid: nextKid, state: 'next', alg: 'RS256' });
    // No further ID-token alg configured: one entry per key, ID tokens in the key's own alg.
    expect(jwks.keys).toHaveLength(2);
    expect(ring.idTokenAlgs).toEqual(['RS256']);
  });

  it('with a further ID-token alg (ID_TOKEN_SIGNING_ALGS), publishes each RSA key again for it, under its own kid and alg', async () => {
    const ring = KeyRing.fromState(await loadKeyDir(await copyOfValidDir(), { production: true }), { twinAlgs: ['RS256', 'PS256'] });
    const { active, idTokenAlgs, jwks } = await ring;
    expect(idTokenAlgs).toEqual(['RS256', 'PS256']);
    const keys = (JSON.parse(jwks.body.toString()) as { keys: Record<string, unknown>[] }).keys;
    expect(keys.map((key) => [key.kid, key.alg])).toEqual([
      [activeKid, 'RS256'],
      [`${activeKid}~PS256`, 'PS256'],
      [nextKid, 'RS256'],
      [`${nextKid}~PS256`, 'PS256'],
    ]);
    expect(keys[1]!.n).toBe(keys[0]!.n);
    // The twin signs under its own kid; access tokens still verify under the key's own kid only.
    expect((await ring).idTokenSigningKey('PS256')).toMatchObject({ kid: `${active.kid}~PS256`, alg: 'PS256' });
    expect((await ring).idTokenSigningKey('RS256')).toMatchObject({ kid: active.kid, alg: 'RS256' });
    expect((await ring).verificationKey(`${activeKid}~PS256`)).toBeUndefined();
  });

  it('names the manifest when it is not JSON', async () => {
    const dir = await copyOfValidDir();
    await writeFile(join(dir, MANIFEST_FILE), '{"version": 1, "keys": [', { mode: 0o600 });
    const err = await loadError(dir);
    expect(err.file).toBe(join(dir, MANIFEST_FILE));
    expect(err.message).toBe(`${join(dir, MANIFEST_FILE)}: not valid JSON`);
  });

  it('names a malformed key file without quoting its content', async () => {
    const dir = await copyOfValidDir();
    const file = join(dir, keyFileName(activeKid));
    const secretish = (await readFile(file, 'utf8')).slice(0, 300);
    await writeFile(file, secretish, { mode: 0o600 });
    const err = await loadError(dir);
    expect(err.file).toBe(file);
    expect(err.message).toContain(file);
    const d = (JSON.parse(await readFile(join(template, keyFileName(activeKid)), 'utf8')) as { d: string }).d;
    expect(err.message).not.toContain(d.slice(0, 12));
    expect(err.message).not.toContain('"kty"');
  });

  it('refuses two keys claiming active, naming the manifest', async () => {
    const dir = await copyOfValidDir();
    const file = await editManifest(dir, (manifest) => {
      Object.assign(manifest.keys[1]!, { state: 'active', activatedAt: new Date().toISOString() });
    });
    const err = await loadError(dir);
    expect(err.file).toBe(file);
    expect(err.message).toMatch(/2 keys claim state "active"/);
  });

  it('refuses a kid listed twice, naming the manifest', async () => {
    const dir = await copyOfValidDir();
    const file = await editManifest(dir, (manifest) => {
      manifest.keys.push({ ...manifest.keys[1]! });
    });
    const err = await loadError(dir);
    expect(err.file).toBe(file);
    expect(err.message).toBe(`${file}: invalid key manifest: kid ${nextKid} is listed twice`);
  });

  it('refuses an unsupported alg, naming the manifest', async () => {
    const dir = await copyOfValidDir();
    const file = await editManifest(dir, (manifest) => {
      manifest.keys[0]!.alg = 'HS256';
    });
    const err = await loadError(dir);
    expect(err.file).toBe(file);
    expect(err.message).toMatch(/keys\.0\.alg: unsupported alg/);
  });

  it('refuses a key whose type does not fit its alg, naming the key file', async () => {
    const dir = await copyOfValidDir();
    await editManifest(dir, (manifest) => {
      manifest.keys[0]!.alg = 'ES256';
    });
    const file = join(dir, keyFileName(activeKid));
    expect((await loadError(dir)).message).toBe(`${file}: the key says alg RS256 but the manifest says ES256`);
    // Without its own alg member, the key type itself is checked against the manifest's alg.
    const { alg: _alg, ...bare } = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify(bare), { mode: 0o600 });
    const err = await loadError(dir);
    expect(err.file).toBe(file);
    expect(err.message).toMatch(/ES256 needs an EC P-256 key, found rsa/);
  });

  it('refuses an RSA key under 2048 bits, naming the key file', async () => {
    const dir = await copyOfValidDir();
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const kid = await calculateJwkThumbprint(createPublicKey(privateKey).export({ format: 'jwk' }) as JWK);
    await writeFile(join(dir, keyFileName(kid)), JSON.stringify(privateKey.export({ format: 'jwk' })), { mode: 0o600 });
    await editManifest(dir, (manifest) => {
      manifest.keys[1] = { kid, alg: 'RS256', state: 'next', createdAt: new Date().toISOString() };
    });
    const err = await loadError(dir);
    expect(err.file).toBe(join(dir, keyFileName(kid)));
    expect(err.message).toMatch(/1024 bits; RS256 needs at least 2048/);
  });

  it('refuses a missing key file and a kid that is not the key thumbprint', async () => {
    const dir = await copyOfValidDir();
    await rm(join(dir, keyFileName(nextKid)));
    const missing = await loadError(dir);
    expect(missing.file).toBe(join(dir, keyFileName(nextKid)));
    expect(missing.message).toMatch(/missing/);

    await writeFile(join(dir, keyFileName(nextKid)), await readFile(join(dir, keyFileName(activeKid))), { mode: 0o600 });
    const swapped = await loadError(dir);
    expect(swapped.file).toBe(join(dir, keyFileName(nextKid)));
  });

  it('warns about loose modes outside production and refuses them in production, naming the path', async () => {
    const dir = await copyOfValidDir();
    const file = join(dir, keyFileName(activeKid));
    await chmod(file, 0o644);
    const state = await loadKeyDir(dir, { production: false });
    expect(state.warnings).toHaveLength(1);
    expect(state.warnings[0]).toContain(file);
    expect(state.warnings[0]).toMatch(/mode 0644.*chmod 600/);
    const err = await loadError(dir, true);
    expect(err.file).toBe(file);
    expect(err.message).toMatch(/mode 0644/);

    await chmod(file, 0o600);
    await chmod(dir, 0o755);
    expect((await loadError(dir, true)).file).toBe(dir);
    expect((await loadKeyDir(dir, { production: false })).warnings[0]).toMatch(/chmod 700/);
  });

  it("checks the manifest's mode too: refused in production, a warning otherwise", async () => {
    const dir = await copyOfValidDir();
    const manifest = join(dir, MANIFEST_FILE);
    await chmod(manifest, 0o666);
    const err = await loadError(dir, true);
    expect(err.file).toBe(manifest);
    expect(err.message).toMatch(/mode 0666.*chmod 600/);
    const ring = await loadKeyRing(dir, { production: false });
    expect(ring.active.kid).toBe(activeKid);
    expect(ring.warnings).toHaveLength(1);
    expect(ring.warnings[0]).toContain(manifest);
  });

  it('treats a directory without a manifest as empty, and an empty ring as unusable', async () => {
    const dir = await copyOfValidDir();
    await rm(join(dir, MANIFEST_FILE));
    const state = await loadKeyDir(dir, { production: true });
    expect(state.keys).toEqual([]);
    expect(state.orphans).toHaveLength(2);
    await expect(KeyRing.fromState(state)).rejects.toThrow(/no signing keys; run `npm run keys:rotate`/);
    const missing = await loadKeyDir(join(dir, 'nope'), { production: true });
    expect(missing.exists).toBe(false);
  });
});
