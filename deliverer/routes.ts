// Where mail for a domain goes: a static route (smarthost set-ups, tests), else the MX
// records in preference order (RFC 5321 5.1), else the domain's own A/AAAA (implicit MX).
// A null MX (RFC 7505) or a domain that does not exist is a permanent failure.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface Hop {
  /** The name to present for TLS verification (the MX host name). */
  name: string;
  /** Addresses to connect to, in order. */
  addresses: string[];
  port: number;
}

export type Route =
  | { kind: 'hops'; hops: Hop[] }
  | { kind: 'permanent'; reason: string }
  | { kind: 'temporary'; reason: string };

export interface StaticRoute {
  host: string;
  port: number;
}

/** Parses `DOMAIN=HOST:PORT` (DOMAIN may be `*`). */
export function parseStaticRoute(spec: string): [string, StaticRoute] {
  const match = /^([^=\s]+)=(\[[0-9a-f:]+\]|[^:\s]+):(\d{1,5})$/i.exec(spec.trim());
  if (!match) throw new Error(`invalid route "${spec}" (expected DOMAIN=HOST:PORT, DOMAIN may be *)`);
  return [match[1]!.toLowerCase(), { host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3]) }];
}

export class RouteResolver {
  readonly #resolver: Resolver;
  readonly #routes: Map<string, StaticRoute>;
  readonly #port: number;

  constructor(options: { dnsServers?: string[]; routes?: Map<string, StaticRoute>; smtpPort?: number; timeoutMs?: number }) {
    this.#resolver = new Resolver({ timeout: options.timeoutMs ?? 5000, tries: 2 });
    if (options.dnsServers?.length) this.#resolver.setServers(options.dnsServers);
    this.#routes = options.routes ?? new Map();
    this.#port = options.smtpPort ?? 25;
  }

  /** A host's addresses; "no such name" or "no such record" is an empty list, anything else throws. */
  async #addresses(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const lookup = (query: Promise<string[]>) => query.catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENODATA' || error.code === 'ENOTFOUND') return [] as string[];
      throw error;
    });
    const [v4, v6] = await Promise.all([lookup(this.#resolver.resolve4(host)), lookup(this.#resolver.resolve6(host))]);
    return [...v4, ...v6];
  }

  async resolve(domain: string): Promise<Route> {
    try {
      return await this.#resolve(domain);
    } catch (error) {
      // A resolver that fails (SERVFAIL, timeout) says nothing about the domain: try later.
      return { kind: 'temporary', reason: `DNS lookup for ${domain} failed: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
    }
  }

  async #resolve(domain: string): Promise<Route> {
    const fixed = this.#routes.get(domain) ?? this.#routes.get('*');
    if (fixed) {
      const addresses = await this.#addresses(fixed.host);
      return addresses.length
        ? { kind: 'hops', hops: [{ name: fixed.host, addresses, port: fixed.port }] }
        : { kind: 'temporary', reason: `static route host ${fixed.host} has no address` };
    }
    let mx: { exchange: string; priority: number }[];
    try {
      mx = await this.#resolver.resolveMx(domain);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENOTFOUND') return { kind: 'permanent', reason: `domain ${domain} does not exist (NXDOMAIN)` };
      if (code === 'ENODATA') return this.#implicit(domain);
      return { kind: 'temporary', reason: `MX lookup for ${domain} failed: ${code || (error as Error).message}` };
    }
    if (mx.length === 0) return this.#implicit(domain);
    if (mx.length === 1 && (mx[0]!.exchange === '' || mx[0]!.exchange === '.')) {
      return { kind: 'permanent', reason: `domain ${domain} accepts no mail (null MX, RFC 7505)` };
    }
    // Preference order; hosts of equal preference in random order, to spread load (RFC 5321 5.1).
    const sorted = mx.map((r) => ({ ...r, tiebreak: Math.random() })).sort((a, b) => a.priority - b.priority || a.tiebreak - b.tiebreak);
    const hops: Hop[] = [];
    for (const record of sorted) {
      const addresses = await this.#addresses(record.exchange);
      if (addresses.length) hops.push({ name: record.exchange.replace(/\.$/, ''), addresses, port: this.#port });
    }
    return hops.length ? { kind: 'hops', hops } : { kind: 'temporary', reason: `no MX host of ${domain} has an address` };
  }

  async #implicit(domain: string): Promise<Route> {
    const addresses = await this.#addresses(domain);
    return addresses.length
      ? { kind: 'hops', hops: [{ name: domain, addresses, port: this.#port }] }
      : { kind: 'permanent', reason: `domain ${domain} has no MX and no address` };
  }
}
