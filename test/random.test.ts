import { describe, expect, it } from 'vitest';
import { cryptoRandom } from '../src/random.js';

describe('cryptoRandom', () => {
  it('hands out tokens of the asked length, never the same bytes twice, across refills of its pool', () => {
    const seen = new Set<string>();
    for (let index = 0; index < 10_000; index += 1) {
      const token = cryptoRandom.token(16);
      expect(Buffer.from(token, 'base64url')).toHaveLength(16);
      seen.add(token);
    }
    // 160,000 bytes: the 4 KiB pool was refilled about 40 times.
    expect(seen.size).toBe(10_000);
  });

  it('serves sizes that do not divide the pool, and sizes larger than it', () => {
    const odd = Array.from({ length: 2_000 }, () => cryptoRandom.token(33));
    expect(new Set(odd).size).toBe(odd.length);
    for (const token of odd) expect(Buffer.from(token, 'base64url')).toHaveLength(33);
    const large = cryptoRandom.token(10_000);
    expect(Buffer.from(large, 'base64url')).toHaveLength(10_000);
    // Not a zero-filled buffer: about half of all bits are set.
    const ones = [...Buffer.from(large, 'base64url')].reduce((sum, byte) => sum + byte.toString(2).replace(/0/g, '').length, 0);
    expect(ones / 80_000).toBeGreaterThan(0.45);
    expect(ones / 80_000).toBeLessThan(0.55);
  });
});
