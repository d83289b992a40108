// An address of a host named by a recipient's domain (its MTA-STS policy host, its TLS report
// receiver) that the destination policy lets the deliverer connect to: the same SSRF guard as
// for MX hosts (destination-policy.ts).
import type { Resolver } from 'node:dns/promises';
import type { DestinationPolicy } from '../destination-policy.ts';

export async function permittedAddress(resolver: Resolver, destinations: DestinationPolicy, host: string): Promise<string> {
  const [v4, v6] = await Promise.all([resolver.resolve4(host).catch(() => []), resolver.resolve6(host).catch(() => [])]);
  const addresses = [...v4, ...v6];
  const address = addresses.find((a) => destinations.permits(a));
  if (!address) throw new Error(addresses.length ? `${host} resolves only to refused addresses (${addresses.join(', ')})` : `${host} has no address`);
  return address;
}
