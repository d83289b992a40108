// Which addresses the deliverer connects to. A recipient's domain is chosen by whoever sends,
// and its MX records by whoever owns that domain: without this policy an MX pointing at
// 127.0.0.1, 169.254.169.254 or a pod address would make the deliverer connect into the
// cluster for a stranger (SSRF). Loopback, private, link-local, shared (CGNAT), multicast and
// reserved ranges are refused unless an operator allows a range (`--allow-destination`);
// `--refuse-destination` adds ranges (a cluster's own public ranges, say). Static routes
// (`--route`) are the operator's own choice and are not checked.
import { BlockList, isIP } from 'node:net';

/**
 * RFC 6890's special-purpose ranges that are not the public Internet, and their IPv6
 * counterparts (::/96 holds the unspecified address, loopback and the deprecated IPv4-compatible
 * addresses; IPv4-mapped addresses are checked as their IPv4 address).
 */
export const REFUSED_BY_DEFAULT = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24',
  '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
  '::/96', '64:ff9b::/96', '100::/64', '2001:db8::/32', 'fc00::/7', 'fe80::/10', 'ff00::/8',
];

/** Parses ADDRESS/PREFIX (IPv4 or IPv6). */
export function parseCidr(spec: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address, prefixText, ...rest] = spec.trim().split('/');
  const version = isIP(address ?? '');
  const prefix = Number(prefixText);
  const max = version === 4 ? 32 : 128;
  if (!version || rest.length || !/^\d{1,3}$/.test(prefixText ?? '') || prefix > max) {
    throw new Error(`invalid address range "${spec}" (expected ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fd00::/8)`);
  }
  return { address: address!, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

function blockList(ranges: string[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) {
    const { address, prefix, family } = parseCidr(range);
    list.addSubnet(address, prefix, family);
  }
  return list;
}

export class DestinationPolicy {
  readonly #refused: BlockList;
  readonly #allowed: BlockList;
  readonly #defaults = blockList(REFUSED_BY_DEFAULT);

  constructor(options: { allow?: string[]; refuse?: string[] } = {}) {
    this.#refused = blockList(options.refuse ?? []);
    this.#allowed = blockList(options.allow ?? []);
  }

  /**
   * Whether the deliverer may connect to `address` (IPv4-mapped IPv6 counts as its IPv4
   * address). A range refused on purpose wins over an allowed one that holds it (allow
   * 10.0.0.0/8, refuse the service range 10.96.0.0/12); an allowed range wins over the defaults.
   */
  permits(address: string): boolean {
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (this.#refused.check(address, family)) return false;
    return this.#allowed.check(address, family) || !this.#defaults.check(address, family);
  }
}
