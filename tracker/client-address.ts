// The reader's address for events. Behind an Ingress or a load balancer the connection comes
// from the proxy; proxies named in --trusted-proxies are believed about X-Forwarded-For, read
// from the right (the nearest hop) back to the first address that is not a trusted proxy.
// Anything else a client sends in X-Forwarded-For is ignored: it could say anything.
import { BlockList, isIP } from 'node:net';

export function trustedProxies(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits] = cidr.split('/');
    const family = isIP(address ?? '');
    if (!family) throw new Error(`invalid proxy address "${cidr}" (expected an address or CIDR, e.g. 10.0.0.0/8)`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address!, type);
    else list.addSubnet(address!, Number(bits), type);
  }
  return list;
}

function trusted(list: BlockList, address: string): boolean {
  const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  return family !== 0 && list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
}

export function clientAddress(remote: string, forwardedFor: string | string[] | undefined, proxies: BlockList | undefined): string {
  if (!proxies || !trusted(proxies, remote) || !forwardedFor) return remote;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map((h) => h.trim()).filter(Boolean);
  let address = remote;
  for (let i = hops.length - 1; i >= 0 && trusted(proxies, address); i--) {
    if (!isIP(hops[i]!)) break;
    address = hops[i]!;
  }
  return address;
}
