import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cryptoRandom, type Random } from '../../src/random.js';
import { createRefreshTokenCodec, hashRefreshToken, isFamilyId, parseRefreshToken } from '../../src/tokens/refresh-token.js';

const SECRET = 'unit-test-refresh-token-secret-0123456789';

describe('refresh-token format', () => {
  const codec = createRefreshTokenCodec({ secret: SECRET, random: cryptoRandom });

  it('mints <familyId>.<256-bit secret>.<128-bit tag>, URL-safe, different every time', () => {
    const familyId = codec.newFamilyId();
    expect(isFamilyId(familyId)).toBe(true);
    expect(Buffer.from(familyId, 'base64url')).toHaveLength(16);
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
    const familyId = pinned.newFamilyId();
    expect(pinned.mint(familyId)).toBe(pinned.mint(familyId));
    expect(parseRefreshToken(pinned.mint(familyId))!.secret).toBe(Buffer.alloc(32, 7).toString('base64url'));
  });

  it('verifies the tag only under the same server key', () => {
    const token = codec.mint(codec.newFamilyId());
    expect(createRefreshTokenCodec({ secret: SECRET, random: cryptoRandom }).verify(token)).toBeDefined();
    expect(createRefreshTokenCodec({ secret: `${SECRET}x`, random: cryptoRandom }).verify(token)).toBeUndefined();
  });

  it('rejects a token whose family id, secret or tag was changed', () => {
    const token = codec.mint(codec.newFamilyId());
    const [id, secret, tag] = token.split('.') as [string, string, string];
    const flip = (text: string) => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
    expect(codec.verify(`${flip(id)}.${secret}.${tag}`)).toBeUndefined();
    expect(codec.verify(`${id}.${flip(secret)}.${tag}`)).toBeUndefined();
    expect(codec.verify(`${id}.${secret}.${flip(tag)}`)).toBeUndefined();
  });

  it('never throws on malformed input', () => {
    const token = codec.mint(codec.newFamilyId());
    for (const bad of [undefined, null, 1, {}, [], '', '..', token.slice(0, -1), `${token}A`, `${token}=`, token.replace('.', '+'), 'a'.repeat(10_000), `\u0000${token}`]) {
      expect(() => parseRefreshToken(bad)).not.toThrow();
      expect(parseRefreshToken(bad)).toBeUndefined();
      expect(codec.verify(bad)).toBeUndefined();
    }
  });

  it('stores SHA-256 of the token, never the token', () => {
    const token = codec.mint(codec.newFamilyId());
    expect(hashRefreshToken(token)).toBe(createHash('sha256').update(token).digest('base64url'));
    expect(hashRefreshToken(token)).not.toContain(parseRefreshToken(token)!.secret);
  });

  it('refuses a short server key', () => {
    expect(() => createRefreshTokenCodec({ secret: 'too-short', random: cryptoRandom })).toThrow(TypeError);
  });
});
