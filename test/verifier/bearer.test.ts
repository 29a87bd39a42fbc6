/**
 * Reading the Authorization header is the first thing every request costs: it must take
 * time linear in the header, whatever an attacker puts in it.
 */
import { describe, expect, it } from 'vitest';
import { bearerToken, TokenError } from '../../packages/verifier/src/index.js';

describe('bearerToken', () => {
  it('parses hostile headers of 100,000 spaces in linear time', () => {
    const spaces = ' '.repeat(100_000);
    // Each is far over Node's 16 KiB header limit: worse than any request can carry.
    const refused = [`Bearer x${spaces}y`, `Bearer ${'a '.repeat(50_000)}`, `x${spaces}y`, `${spaces}Bearer${spaces}`];
    const started = performance.now();
    for (const header of refused) expect(() => bearerToken(header)).toThrow(TokenError);
    expect(bearerToken(`Bearer${spaces}x${spaces}`)).toBe('x');
    // A linear parse takes about a millisecond for all five; the backtracking regex took seconds.
    expect(performance.now() - started).toBeLessThan(50);
  });
});
