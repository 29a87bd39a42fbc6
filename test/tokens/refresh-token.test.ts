import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cryptoRandom, type Random } from '../../src/random.js';
import { manualClock } from '../../src/clock.js';
import { createMemoryFamilyStore } from '../../src/stores/memory/families.js';
import type { FamilyStore } from '../../src/stores/types.js';
import { createRefreshTokenCodec, createRefreshTokens, hashRefreshToken, isFamilyId, parseRefreshToken, subjectTag } from '../../src/tokens/refresh-token.js';

const SECRET = 'unit-test-refresh-token-secret-0123456789';

describe('refresh-token format', () => {
  const codec = createRefreshTokenCodec({ secret: SECRET, random: cryptoRandom });

  it('mints <familyId>.<256-bit secret>.<128-bit tag>, URL-safe, different every time', () => {
    const familyId = codec.newFamilyId('user-1');
    expect(isFamilyId(familyId)).toBe(true);
    // The subject's tag (4 characters of its SHA-256), then 128 random bits.
    expect(familyId.slice(0, 4)).toBe(createHash('sha256').update('user-1').digest('base64url').slice(0, 4));
    expect(familyId.slice(0, 4)).toBe(subjectTag('user-1'));
    expect(Buffer.from(familyId.slice(4), 'base64url')).toHaveLength(16);
    expect(codec.newFamilyId('user-1').slice(4)).not.toBe(familyId.slice(4));
    const tokens = new Set(Array.from({ length: 100 }, () => codec.mint(familyId)));
    expect(tokens.size).toBe(100);
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      const parsed = parseRefreshToken(token)!;
      expect(parsed.familyId).toBe(familyId);
      expect(Buffer.from(parsed.secret, 'base64url')).toHaveLength(32);
      expect(Buffer.from(parsed.tag, 'base64url')).toHaveLength(16);
      expect(codec.verify(token)).toEqual(parsed);
    }
  });

  it('draws the secret from the injected Random', () => {
    const fixed: Random = { token: (bytes) => Buffer.alloc(bytes, 7).toString('base64url'), uuid: () => 'unused' };
    const pinned = createRefreshTokenCodec({ secret: SECRET, random: fixed });
    const familyId = pinned.newFamilyId('user-1');
    expect(pinned.mint(familyId)).toBe(pinned.mint(familyId));
    expect(parseRefreshToken(pinned.mint(familyId))!.secret).toBe(Buffer.alloc(32, 7).toString('base64url'));
  });

  it('mints exactly the documented construction (a known-answer test)', () => {
    // Pins the tag: HMAC-SHA256 keyed with HMAC-SHA256(secret, KEY_LABEL) (domain separation
    // from other MACs under the same configured secret), over `familyId "." secret`, first
    // 16 bytes. A change to the label, the key derivation, the MAC input or the truncation
    // fails here, and would also invalidate every refresh token already issued.
    const fixed: Random = { token: (bytes) => Buffer.alloc(bytes, 7).toString('base64url'), uuid: () => 'unused' };
    const familyId = 'fam1ly-id_0123456789';
    const tokenSecret = Buffer.alloc(32, 7).toString('base64url');
    const key = createHmac('sha256', SECRET).update('token-authority refresh-token tag v1').digest();
    const tag = createHmac('sha256', key).update(`${familyId}.${tokenSecret}`).digest().subarray(0, 16).toString('base64url');
    const pinned = createRefreshTokenCodec({ secret: SECRET, random: fixed });
    const token = pinned.mint(familyId);
    expect(token).toBe(`${familyId}.${tokenSecret}.${tag}`);
    expect(pinned.verify(token)).toEqual({ familyId, secret: tokenSecret, tag });
    // Not the tag keyed with the configured secret itself.
    expect(tag).not.toBe(createHmac('sha256', SECRET).update(`${familyId}.${tokenSecret}`).digest().subarray(0, 16).toString('base64url'));
  });

  it("derives a token's successor from it: the same every time, in the documented construction (a known-answer test)", () => {
    // Pins the successor: its secret is HMAC-SHA256 keyed with HMAC-SHA256(secret, SUCCESSOR
    // label) over the whole presented token, all 32 bytes; its tag as for any token. A
    // change here turns every in-flight retry inside the grace window into reuse.
    const token = codec.mint(codec.newFamilyId('user-1'));
    const parsed = codec.verify(token)!;
    const successor = codec.successor(parsed);
    expect(codec.successor(parsed)).toBe(successor);
    expect(createRefreshTokenCodec({ secret: SECRET, random: cryptoRandom }).successor(parsed)).toBe(successor);
    const key = createHmac('sha256', SECRET).update('token-authority refresh-token successor v1').digest();
    const secret = createHmac('sha256', key).update(token).digest('base64url');
    expect(parseRefreshToken(successor)).toMatchObject({ familyId: parsed.familyId, secret });
    expect(codec.verify(successor)).toBeDefined();
    expect(successor).not.toBe(token);
    expect(codec.successor(codec.verify(successor)!)).not.toBe(successor);
    // Under another server key, another successor.
    expect(createRefreshTokenCodec({ secret: `${SECRET}x`, random: cryptoRandom }).successor(parsed)).not.toBe(successor);
  });

  it('verifies the tag only under the same server key', () => {
    const token = codec.mint(codec.newFamilyId('user-1'));
    expect(createRefreshTokenCodec({ secret: SECRET, random: cryptoRandom }).verify(token)).toBeDefined();
    expect(createRefreshTokenCodec({ secret: `${SECRET}x`, random: cryptoRandom }).verify(token)).toBeUndefined();
  });

  it('rejects a token whose family id, secret or tag was changed', () => {
    const token = codec.mint(codec.newFamilyId('user-1'));
    const [id, secret, tag] = token.split('.') as [string, string, string];
    const flip = (text: string) => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
    expect(codec.verify(`${flip(id)}.${secret}.${tag}`)).toBeUndefined();
    expect(codec.verify(`${id}.${flip(secret)}.${tag}`)).toBeUndefined();
    expect(codec.verify(`${id}.${secret}.${flip(tag)}`)).toBeUndefined();
  });

  it('rejects a change at any position of the tag: all 16 bytes are compared', () => {
    const token = codec.mint(codec.newFamilyId('user-1'));
    const [id, secret, tag] = token.split('.') as [string, string, string];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    expect(tag).toHaveLength(22);
    for (let i = 0; i < tag.length; i++) {
      // 22 characters carry 132 bits: the last one holds the tag's final 2 bits and 4 zero
      // bits, so it changes one of those 2 (xor 16) to stay canonical; the others change bit 0.
      const value = alphabet.indexOf(tag[i]!);
      const changed = `${tag.slice(0, i)}${alphabet[value ^ (i === tag.length - 1 ? 16 : 1)]}${tag.slice(i + 1)}`;
      expect(Buffer.from(changed, 'base64url').equals(Buffer.from(tag, 'base64url'))).toBe(false);
      const forged = `${id}.${secret}.${changed}`;
      // Well formed and canonical: refused for its tag, not its shape.
      expect(parseRefreshToken(forged)).toBeDefined();
      expect(codec.verify(forged), `tag changed at position ${i}`).toBeUndefined();
    }
  });

  it('never throws on malformed input', () => {
    const token = codec.mint(codec.newFamilyId('user-1'));
    for (const bad of [
      undefined,
      null,
      1,
      {},
      [],
      '',
      '..',
      token.slice(0, -1),
      `${token}A`,
      `${token}=`,
      token.replace('.', '+'),
      'a'.repeat(10_000),
      `\u0000${token}`,
    ]) {
      expect(() => parseRefreshToken(bad)).not.toThrow();
      expect(parseRefreshToken(bad)).toBeUndefined();
      expect(codec.verify(bad)).toBeUndefined();
    }
  });

  it('stores SHA-256 of the token, never the token', () => {
    const token = codec.mint(codec.newFamilyId('user-1'));
    expect(hashRefreshToken(token)).toBe(createHash('sha256').update(token).digest('base64url'));
    expect(hashRefreshToken(token)).not.toContain(parseRefreshToken(token)!.secret);
  });

  it('refuses a short server key', () => {
    expect(() => createRefreshTokenCodec({ secret: 'too-short', random: cryptoRandom })).toThrow(TypeError);
  });

  it('needs a server key of at least 32 characters, exactly', () => {
    expect(() => createRefreshTokenCodec({ secret: 'k'.repeat(31), random: cryptoRandom })).toThrow(TypeError);
    const codec32 = createRefreshTokenCodec({ secret: 'k'.repeat(32), random: cryptoRandom });
    expect(codec32.verify(codec32.mint(codec32.newFamilyId('user-1')))).toBeDefined();
  });
});

describe('refresh tokens over a family store', () => {
  /** A memory store that records every argument it is given. */
  function recordingStore() {
    const seen: unknown[] = [];
    const inner = createMemoryFamilyStore({ clock: manualClock(Date.now()), refreshTokenTtl: 3600, familyMaxTtl: 7200, reuseGrace: 0, revokedMarkerTtl: 960 });
    const store: Pick<FamilyStore, 'create' | 'rotate' | 'current'> = {
      create: (...args) => (seen.push(args), inner.create(...args)),
      rotate: (...args) => (seen.push(args), inner.rotate(...args)),
      current: (...args) => (seen.push(args), inner.current(...args)),
    };
    return { seen, store };
  }
  const grant = { subject: 'user-1', clientId: 'app', scope: 'openid', audience: 'https://api.example' };

  it('hands the store the family id and hashes only: never a token, its secret or its tag', async () => {
    const { seen, store } = recordingStore();
    const tokens = createRefreshTokens({ secret: SECRET, random: cryptoRandom, families: store });
    const { family, refreshToken } = await tokens.create(grant, {});
    const rotation = await tokens.rotate(refreshToken, {});
    if (rotation.outcome !== 'rotated') throw new Error(rotation.outcome);
    expect(await tokens.inspect(rotation.refreshToken)).toMatchObject({ id: family.id });
    expect(await tokens.rotate(refreshToken, {})).toMatchObject({ outcome: 'reused', familyId: family.id, family: { id: family.id } });
    expect(seen).toHaveLength(4);
    const given = JSON.stringify(seen);
    for (const token of [refreshToken, rotation.refreshToken]) {
      const { secret, tag } = parseRefreshToken(token)!;
      expect(given).not.toContain(secret);
      expect(given).not.toContain(tag);
    }
    expect(seen[1]).toEqual([family.id, { presented: hashRefreshToken(refreshToken), next: hashRefreshToken(rotation.refreshToken) }, {}, {}]);
  });

  it('asks the store nothing for a token whose tag does not verify, so a forgery revokes nothing', async () => {
    const { seen, store } = recordingStore();
    const tokens = createRefreshTokens({ secret: SECRET, random: cryptoRandom, families: store });
    const { family, refreshToken } = await tokens.create(grant, {});
    const forged = createRefreshTokens({ secret: `${SECRET}-other`, random: cryptoRandom, families: store });
    const [, secret] = refreshToken.split('.');
    for (const token of [
      `${family.id}.${secret}.${cryptoRandom.token(16)}`,
      createRefreshTokenCodec({ secret: `${SECRET}-other`, random: cryptoRandom }).mint(family.id),
    ]) {
      expect(await tokens.rotate(token, {})).toEqual({ outcome: 'invalid' });
      expect(await tokens.inspect(token)).toBeNull();
      expect(tokens.verifiedFamilyId(token)).toBeUndefined();
    }
    expect(seen).toHaveLength(1); // the create
    expect(forged.verifiedFamilyId(refreshToken)).toBeUndefined();
    expect((await tokens.rotate(refreshToken, {})).outcome).toBe('rotated');
  });
});
