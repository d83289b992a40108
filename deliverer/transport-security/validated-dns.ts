// DNS answers together with whether the resolver validated them with DNSSEC (the AD flag).
// DANE (RFC 7672) may only act on validated answers, and Node's resolver does not say whether
// an answer was validated. Like Postfix and Exim, mtrelay does not validate itself: it trusts
// the AD flag of its configured resolver, which must be a validating resolver it reaches over
// a trusted path (on the same host or pod: RFC 6698 4.1, RFC 7672 1.3).
import dgram from 'node:dgram';
import { getServers } from 'node:dns';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import dnsPacket, { type Answer, type DecodedPacket, type RecordType } from 'dns-packet';
import { setBounded } from './bounded-cache.ts';

export interface ValidatedAnswer {
  /** NOERROR, NXDOMAIN, SERVFAIL, … */
  rcode: string;
  /** The resolver validated the answer (or the proof that there is none) with DNSSEC. */
  authenticated: boolean;
  answers: Answer[];
}

interface CacheEntry { answer: ValidatedAnswer; expires: number }

/** Entries kept at most; the oldest go first. */
const CACHE_SIZE = 10_000;
/** Longest an answer is kept, whatever its TTL. */
const MAX_TTL_SECONDS = 300;

function server(spec: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2] ?? 53) };
  if (net.isIPv6(spec)) return { host: spec, port: 53 };
  const [host, port] = spec.split(':');
  return { host: host!, port: Number(port ?? 53) };
}

export class ValidatedDns {
  readonly #servers: { host: string; port: number }[];
  readonly #timeoutMs: number;
  readonly #cache = new Map<string, CacheEntry>();

  constructor(options: { servers?: string[]; timeoutMs?: number } = {}) {
    this.#servers = (options.servers?.length ? options.servers : getServers()).map(server);
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /** Asks each resolver in turn; throws only when none answered. */
  async query(name: string, type: RecordType): Promise<ValidatedAnswer> {
    const key = `${type} ${name.toLowerCase()}`;
    const cached = this.#cache.get(key);
    if (cached && cached.expires > Date.now()) return cached.answer;
    let lastError: unknown = new Error('no DNS server configured');
    for (const target of this.#servers) {
      try {
        const packet = await this.#ask(target, name, type);
        const answer: ValidatedAnswer = {
          rcode: (packet as DecodedPacket & { rcode?: string }).rcode ?? 'NOERROR',
          authenticated: packet.flag_ad,
          answers: (packet.answers ?? []).filter((a) => a.type === type),
        };
        this.#remember(key, answer);
        return answer;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  #remember(key: string, answer: ValidatedAnswer): void {
    // A failure is not cached: the next attempt asks again.
    if (answer.rcode === 'SERVFAIL') return;
    const ttl = Math.min(MAX_TTL_SECONDS, ...answer.answers.map((a) => ('ttl' in a && a.ttl !== undefined ? a.ttl : MAX_TTL_SECONDS)));
    setBounded(this.#cache, key, { answer, expires: Date.now() + ttl * 1000 }, CACHE_SIZE);
  }

  /** One query over UDP, again over TCP when the answer was truncated. */
  async #ask(target: { host: string; port: number }, name: string, type: RecordType): Promise<DecodedPacket> {
    const query = {
      type: 'query' as const, id: randomInt(65536), questions: [{ type, name }],
      // RD, and AD to ask for the validation result (RFC 6840 5.7); the OPT record's DO bit
      // asks a resolver to validate (RFC 3225).
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
      additionals: [{ type: 'OPT' as const, name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK } as Answer],
    };
    const udp = await this.#udp(target, dnsPacket.encode(query), query.id);
    if (!udp.flag_tc) return udp;
    return this.#tcp(target, dnsPacket.streamEncode(query), query.id);
  }

  #udp(target: { host: string; port: number }, message: Buffer, id: number): Promise<DecodedPacket> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket(net.isIPv6(target.host) ? 'udp6' : 'udp4');
      const timer = setTimeout(() => finish(new Error(`DNS timeout from ${target.host}:${target.port}`)), this.#timeoutMs);
      const finish = (error: Error | null, packet?: DecodedPacket) => {
        clearTimeout(timer);
        socket.close();
        if (error) reject(error);
        else resolve(packet!);
      };
      socket.on('error', (error) => finish(error));
      socket.on('message', (reply) => {
        try {
          const packet = dnsPacket.decode(reply);
          if (packet.id === id) finish(null, packet);
        } catch (error) {
          finish(error as Error);
        }
      });
      socket.send(message, target.port, target.host);
    });
  }

  #tcp(target: { host: string; port: number }, message: Buffer, id: number): Promise<DecodedPacket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(target.port, target.host);
      let received = Buffer.alloc(0);
      socket.setTimeout(this.#timeoutMs, () => socket.destroy(new Error(`DNS timeout from ${target.host}:${target.port} (TCP)`)));
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk]);
        if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
        socket.end();
        try {
          const packet = dnsPacket.decode(received.subarray(2, 2 + received.readUInt16BE(0)));
          if (packet.id !== id) throw new Error('DNS answer for another query');
          resolve(packet);
        } catch (error) {
          reject(error as Error);
        }
      });
      socket.write(message);
    });
  }
}
