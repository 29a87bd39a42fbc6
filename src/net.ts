/**
 * Client addresses as rate limits count them. Imported by users/ (logins, registrations)
 * and oauth/ (client authentication) alike, so it belongs to neither.
 */
import { isIPv4, isIPv6 } from 'node:net';

/**
 * The unit an attacker pays for: an IPv4 address (IPv4-mapped IPv6 unwrapped), or the /64
 * of an IPv6 address, since any host is handed a whole /64 and could otherwise rotate
 * through it to get a fresh budget per request.
 */
export function clientNetwork(address: string): string {
  // Some proxies append the client's port to X-Forwarded-For (`1.2.3.4:5678`,
  // `[2001:db8::1]:5678`): a port per request must not mean a budget per request.
  const host = /^\[([^\]]+)\](?::\d+)?$/.exec(address)?.[1] ?? /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(address)?.[1] ?? address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (mapped) return mapped[1]!;
  if (isIPv4(host)) return host;
  if (isIPv6(host)) return `${expandIPv6(host).slice(0, 4).join(':')}::/64`;
  // Not an address at all (a proxy's junk): one shared budget, not one per spelling.
  return 'invalid';
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
}
