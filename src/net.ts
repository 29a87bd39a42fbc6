/**
 * Client addresses as rate limits count them. Imported by users/ (logins, registrations)
 * and oauth/ (client authentication) alike, so it belongs to neither.
 */
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * The unit an attacker pays for: an IPv4 address (IPv4-mapped IPv6 unwrapped), or the /64
 * of an IPv6 address, since any host is handed a whole /64 and could otherwise rotate
 * through it to get a fresh budget per request.
 */
export function clientNetwork(address: string): string {
  // Some proxies append the client's port to X-Forwarded-For (`1.2.3.4:5678`,
  // `[2001:db8::1]:5678`): a port per request must not mean a budget per request.
  const host = /^\[([^\]]+)\](?::\d+)?$/.exec(address)?.[1] ?? /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(address)?.[1] ?? address;
  if (isIPv4(host)) return host;
  // Not an address at all (a proxy's junk): one shared budget, not one per spelling.
  // node:net decides what is an address; ipaddr.js accepts more (`127.1`, `0x7f.0.0.1`).
  if (!isIPv6(host)) return 'invalid';
  // A zone id (`%eth0`) names an interface, not a network; ipaddr.js refuses some that node:net accepts.
  const ipv6 = ipaddr.IPv6.parse(host.replace(/%.*$/, ''));
  // ipaddr.js reads the deprecated IPv4-compatible `::1.2.3.4` as mapped too: that host's IPv4 address.
  if (ipv6.isIPv4MappedAddress()) return ipv6.toIPv4Address().toString();
  return `${ipv6.parts
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}
