/**
 * Parity test for `clientNetwork`: the rate-limit key of an address must not depend on how
 * the address is spelled. Pinned against the hand-written IPv6 expansion before ipaddr.js
 * replaced it; both must pass it.
 */
import { describe, expect, it } from 'vitest';
import { clientNetwork } from '../src/net.js';

/** A small seeded generator: the same addresses on every run. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** Eight 16-bit groups, some of them zero runs, so that `::` has something to compress. */
function randomGroups(random: () => number): number[] {
  const groups = Array.from({ length: 8 }, () => (random() < 0.4 ? 0 : Math.floor(random() * 0x10000)));
  // Never an IPv4-mapped address (::ffff:0:0/96): those are keyed on the IPv4 address.
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) groups[5] = 0xfffe;
  return groups;
}

/** The spellings a proxy or a socket might hand us for one address. */
function spellings(groups: number[]): string[] {
  const short = groups.map((group) => group.toString(16));
  const padded = groups.map((group) => group.toString(16).padStart(4, '0'));
  const result = [short.join(':'), padded.join(':'), padded.join(':').toUpperCase()];
  // Compress every zero run that `::` may stand for (one per address).
  for (let start = 0; start < 8; start += 1) {
    for (let end = start + 1; end <= 8; end += 1) {
      if (groups.slice(start, end).some((group) => group !== 0)) break;
      result.push(`${short.slice(0, start).join(':')}::${short.slice(end).join(':')}`);
    }
  }
  return result;
}

describe('clientNetwork', () => {
  it('keys every spelling of an IPv6 address on the same /64: its first four groups, lower case, no leading zeros', () => {
    const random = seeded(20_260_104);
    for (let i = 0; i < 500; i += 1) {
      const groups = randomGroups(random);
      const expected = `${groups
        .slice(0, 4)
        .map((group) => group.toString(16))
        .join(':')}::/64`;
      for (const spelling of spellings(groups)) {
        expect(clientNetwork(spelling), spelling).toBe(expected);
        expect(clientNetwork(`[${spelling}]:4321`), spelling).toBe(expected);
      }
    }
  });

  it.each([
    ['::', '0:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['[fe80::1%eth0]:80', 'fe80:0:0:0::/64'],
    ['::1%x:y', '0:0:0:0::/64'],
    ['2001:DB8::', '2001:db8:0:0::/64'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
    ['::ffff:203.0.113.9', '203.0.113.9'],
    ['[::ffff:203.0.113.9]:80', '203.0.113.9'],
    ['203.0.113.9', '203.0.113.9'],
    ['203.0.113.9:80', '203.0.113.9'],
  ])('%s → %s', (address, network) => {
    expect(clientNetwork(address)).toBe(network);
  });

  it.each([
    '',
    'unknown',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    '12345::',
    '::g',
    '203.0.113.256',
    '203.0.113',
    '2001:db8::1/64',
    '[2001:db8::1',
    '203.0.113.9, 198.51.100.1',
  ])('puts %j, which is not an address, in the one shared bucket', (address) => {
    expect(clientNetwork(address)).toBe('invalid');
  });

  // Where ipaddr.js replaced the hand-written expansion, which got these wrong.
  it.each([
    // An IPv4 tail after `::` counts as two groups (the old code counted one: 1:2:0:0).
    ['1:2::3:4:5:1.2.3.4', '1:2:0:3::/64'],
    // IPv4-mapped addresses in any spelling are their IPv4 address (the old code only knew
    // `::ffff:a.b.c.d` and put every other spelling in the shared 0:0:0:0::/64).
    ['::ffff:cb00:7109', '203.0.113.9'],
    ['0:0:0:0:0:FFFF:203.0.113.9', '203.0.113.9'],
    ['::ffff:203.0.113.9%eth0', '203.0.113.9'],
    // ipaddr.js reads the deprecated IPv4-compatible form as mapped (RFC 4291 §2.5.5.1).
    ['::203.0.113.9', '203.0.113.9'],
  ])('%s → %s', (address, network) => {
    expect(clientNetwork(address)).toBe(network);
  });
});
