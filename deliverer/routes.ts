// Where mail for a domain goes: a static route (smarthost set-ups, tests), else the MX
// records in preference order (RFC 5321 5.1), else the domain's own A/AAAA (implicit MX).
// A null MX (RFC 7505) or a domain that does not exist is a permanent failure. Addresses the
// destination policy refuses (loopback, private, … : destination-policy.ts) are never hops, and
// an address literal (user@[192.0.2.1]) is delivered only where a static route covers it.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { replyLine, type ReplyArgs, type ReplyName } from '../shared/smtp-replies.ts';
import { BOUNCE_CLASS } from './bounce-class.ts';
import { DestinationPolicy } from './destination-policy.ts';

export interface Hop {
  /** The name to present for TLS verification (the MX host name). */
  name: string;
  /** Addresses to connect to, in order. */
  addresses: string[];
  port: number;
}

type PermanentReply = 'DOMAIN_NOT_FOUND' | 'NULL_MX' | 'NO_MX_NO_ADDRESS' | 'ADDRESS_LITERAL_REFUSED' | 'INTERNAL_DESTINATION';
/** Refusals of mtrelay's own policy, not facts about the address: bounce class 25, and no suppression. */
const POLICY_REFUSALS = new Set<ReplyName>(['ADDRESS_LITERAL_REFUSED', 'INTERNAL_DESTINATION']);
type TemporaryReply = 'DNS_LOOKUP_FAILED' | 'ROUTE_HOST_UNRESOLVED' | 'MX_HOSTS_UNRESOLVED';

/** Where to send, or why not: a reply of the catalogue that becomes the recipients' raw_reason. */
export type Route =
  /** `static`: a `--route` of the operator's, held only to the configured TLS policy. */
  | { kind: 'hops'; hops: Hop[]; static?: true }
  | { kind: 'permanent' | 'temporary'; reply: ReplyName; line: string; bounceClass: number };

function permanent<N extends PermanentReply>(reply: N, ...args: ReplyArgs<N>): Route {
  const bounceClass = POLICY_REFUSALS.has(reply) ? BOUNCE_CLASS.ADMIN_FAILURE : BOUNCE_CLASS.INVALID_RECIPIENT;
  return { kind: 'permanent', reply, line: replyLine(reply, ...args), bounceClass };
}

function temporary<N extends TemporaryReply>(reply: N, ...args: ReplyArgs<N>): Route {
  return { kind: 'temporary', reply, line: replyLine(reply, ...args), bounceClass: BOUNCE_CLASS.DNS_FAILURE };
}

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

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
  readonly #destinations: DestinationPolicy;

  constructor(options: { dnsServers?: string[]; routes?: Map<string, StaticRoute>; smtpPort?: number; timeoutMs?: number; destinations?: DestinationPolicy }) {
    this.#resolver = new Resolver({ timeout: options.timeoutMs ?? 5000, tries: 2 });
    if (options.dnsServers?.length) this.#resolver.setServers(options.dnsServers);
    this.#routes = options.routes ?? new Map();
    this.#port = options.smtpPort ?? 25;
    this.#destinations = options.destinations ?? new DestinationPolicy();
  }

  /** A host's addresses; "no such name" or "no such record" is an empty list, anything else throws. */
  async #addresses(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const lookup = (query: Promise<string[]>) => query.catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENODATA' || error.code === 'ENOTFOUND') return [] as string[];
      throw Object.assign(error, { query: `A/AAAA ${host}` });
    });
    const [v4, v6] = await Promise.all([lookup(this.#resolver.resolve4(host)), lookup(this.#resolver.resolve6(host))]);
    return [...v4, ...v6];
  }

  async resolve(domain: string): Promise<Route> {
    try {
      return await this.#resolve(domain);
    } catch (error) {
      // A resolver that fails (SERVFAIL, timeout) says nothing about the domain: try later.
      return temporary('DNS_LOOKUP_FAILED', { query: (error as { query?: string }).query ?? domain, error: errorCode(error) });
    }
  }

  async #resolve(domain: string): Promise<Route> {
    const fixed = this.#routes.get(domain) ?? this.#routes.get('*');
    if (fixed) {
      const addresses = await this.#addresses(fixed.host);
      return addresses.length
        ? { kind: 'hops', hops: [{ name: fixed.host, addresses, port: fixed.port }], static: true }
        : temporary('ROUTE_HOST_UNRESOLVED', { host: fixed.host });
    }
    // RFC 5321 4.1.3: a literal names a host, not a domain; it reaches no one a DNS name would not.
    if (domain.startsWith('[')) return permanent('ADDRESS_LITERAL_REFUSED', { domain });
    let mx: { exchange: string; priority: number }[];
    try {
      mx = await this.#resolver.resolveMx(domain);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENOTFOUND') return permanent('DOMAIN_NOT_FOUND', { domain });
      if (code === 'ENODATA') return this.#implicit(domain);
      return temporary('DNS_LOOKUP_FAILED', { query: `MX ${domain}`, error: errorCode(error) });
    }
    if (mx.length === 0) return this.#implicit(domain);
    if (mx.length === 1 && (mx[0]!.exchange === '' || mx[0]!.exchange === '.')) {
      return permanent('NULL_MX', { domain });
    }
    // Preference order; hosts of equal preference in random order, to spread load (RFC 5321 5.1).
    const sorted = mx.map((r) => ({ ...r, tiebreak: Math.random() })).sort((a, b) => a.priority - b.priority || a.tiebreak - b.tiebreak);
    const hops: Hop[] = [];
    const refused: string[] = [];
    let unresolved = 0;
    for (const record of sorted) {
      const resolved = await this.#addresses(record.exchange);
      if (!resolved.length) unresolved++;
      const addresses = this.#permitted(resolved, refused);
      if (addresses.length) hops.push({ name: record.exchange.replace(/\.$/, ''), addresses, port: this.#port });
    }
    if (hops.length) return { kind: 'hops', hops };
    // Permanent only when every MX host resolved and every address was refused; a host without addresses yet may be DNS still settling.
    return refused.length && !unresolved ? permanent('INTERNAL_DESTINATION', { domain, addresses: refused.join(', ') }) : temporary('MX_HOSTS_UNRESOLVED', { domain });
  }

  /** The addresses the destination policy permits; the others are added to `refused`. */
  #permitted(addresses: string[], refused: string[]): string[] {
    return addresses.filter((address) => this.#destinations.permits(address) || (refused.push(address), false));
  }

  async #implicit(domain: string): Promise<Route> {
    const refused: string[] = [];
    const addresses = this.#permitted(await this.#addresses(domain), refused);
    if (addresses.length) return { kind: 'hops', hops: [{ name: domain, addresses, port: this.#port }] };
    return refused.length ? permanent('INTERNAL_DESTINATION', { domain, addresses: refused.join(', ') }) : permanent('NO_MX_NO_ADDRESS', { domain });
  }
}
