// Where webhook posts (and OAuth2 token requests) may go. A webhook URL is a tenant's choice:
// unless --webhook-allow-private, it may not reach the dispatcher's own network — loopback,
// private and link-local ranges (the cloud metadata service at 169.254.169.254 among them),
// carrier-grade NAT, multicast. The check is on the address actually connected to (DNS is
// resolved by our lookup), so a name that resolves to a private address, at once or later,
// is refused too.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent } from 'undici';

const PRIVATE = new BlockList();
for (const [network, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) PRIVATE.addSubnet(network, bits, 'ipv4');
for (const [network, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) PRIVATE.addSubnet(network, bits, 'ipv6');

/** True for an address a tenant's webhook may not reach. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const plain = mapped ?? address;
  const family = isIP(plain);
  return family === 0 || PRIVATE.check(plain, family === 6 ? 'ipv6' : 'ipv4');
}

export class PrivateAddressError extends Error {
  constructor(host: string, address: string) {
    super(`${host} is ${address}, a private address webhooks may not reach (--webhook-allow-private)`);
    this.name = 'PrivateAddressError';
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** The HTTP client of webhook posts: keep-alive connections, and the address check unless private addresses are allowed. */
export function webhookAgent(allowPrivate: boolean): Agent {
  if (allowPrivate) return new Agent({ keepAliveTimeout: 30_000 });
  const lookup = (hostname: string, options: object, callback: LookupCallback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const refused = addresses.find((a) => isPrivateAddress(a.address));
      if (refused) return callback(new PrivateAddressError(hostname, refused.address) as NodeJS.ErrnoException, []);
      const all = (options as { all?: boolean }).all;
      return all ? callback(null, addresses) : callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  return new Agent({ keepAliveTimeout: 30_000, connect: { lookup } });
}

/** An IP literal in a URL is connected to without a lookup: checked here. */
export function checkLiteralHost(url: string, allowPrivate: boolean): void {
  if (allowPrivate) return;
  const host = URL.parse(url)?.hostname.replace(/^\[|\]$/g, '') ?? '';
  if (isIP(host) && isPrivateAddress(host)) throw new PrivateAddressError(host, host);
}
