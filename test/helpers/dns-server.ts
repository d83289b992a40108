// A real DNS server on loopback (UDP and TCP on the same port, as resolvers expect when a
// long answer is truncated over UDP) answering from a zone the test controls. For DANE it also
// plays a validating resolver: names marked `dnssec` are answered with the AD flag, as a
// resolver answers for a zone whose signatures it verified.
import dgram from 'node:dgram';
import dnsPacket, { type Answer, type DecodedPacket } from 'dns-packet';
import net from 'node:net';

export interface ZoneRecords {
  A?: string[];
  AAAA?: string[];
  MX?: { exchange: string; priority: number }[];
  TXT?: string[];
  CNAME?: string;
  TLSA?: { usage: number; selector: number; matchingType: number; certificate: Buffer }[];
  /** Answers for this name (records, or "no such record") carry the AD flag: validated by DNSSEC. */
  dnssec?: boolean;
  /** Answer SERVFAIL for this name, as a broken authoritative server (or a bogus signature) would. */
  servfail?: boolean;
  /** Answer SERVFAIL only to A and AAAA queries (MX answers "no such record"). */
  servfailAddresses?: boolean;
}

export class TestDnsServer {
  readonly zone = new Map<string, ZoneRecords>();
  readonly #udp = dgram.createSocket('udp4');
  readonly #tcp: net.Server;
  port = 0;

  constructor() {
    this.#udp.on('message', (message, peer) => {
      const reply = this.#answer(message);
      if (reply) this.#udp.send(reply, peer.port, peer.address);
    });
    this.#tcp = net.createServer((socket) => {
      let received = Buffer.alloc(0);
      socket.on('error', () => socket.destroy());
      socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk]);
        while (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) {
          const reply = this.#answer(received.subarray(2, 2 + received.readUInt16BE(0)));
          received = received.subarray(2 + received.readUInt16BE(0));
          if (reply) socket.write(Buffer.concat([Buffer.from([reply.length >> 8, reply.length & 0xff]), reply]));
        }
      });
    });
  }

  #answer(message: Buffer): Buffer | undefined {
    let request: DecodedPacket;
    try {
      request = dnsPacket.decode(message);
    } catch {
      return undefined;
    }
    const question = request.questions?.[0];
    if (!question) return undefined;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const records = this.zone.get(name);
    const answers: Answer[] = [];
    let rcode = 0;
    if (!records) rcode = 3; // NXDOMAIN
    else if (records.servfail || (records.servfailAddresses && (question.type === 'A' || question.type === 'AAAA'))) rcode = 2; // SERVFAIL
    else {
      const base = { name: question.name, class: 'IN' as const, ttl: 60 };
      if (question.type === 'A') for (const data of records.A ?? []) answers.push({ ...base, type: 'A', data });
      if (question.type === 'AAAA') for (const data of records.AAAA ?? []) answers.push({ ...base, type: 'AAAA', data });
      if (question.type === 'MX') for (const mx of records.MX ?? []) answers.push({ ...base, type: 'MX', data: { exchange: mx.exchange, preference: mx.priority } });
      if (question.type === 'CNAME' && records.CNAME) answers.push({ ...base, type: 'CNAME', data: records.CNAME });
      if (question.type === 'TXT') for (const data of records.TXT ?? []) answers.push({ ...base, type: 'TXT', data: chunk(data) });
      if (question.type === 'TLSA') for (const data of records.TLSA ?? []) answers.push({ ...base, type: 'TLSA', data });
    }
    const validated = rcode === 0 && records?.dnssec === true;
    return dnsPacket.encode({
      type: 'response', id: request.id, questions: request.questions, answers,
      // QR is set by type; RD copied, RA, the rcode in the low bits, AD when validated.
      flags: (request.flags ?? 0) & dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (validated ? dnsPacket.AUTHENTIC_DATA : 0) | rcode,
    });
  }

  set(name: string, records: ZoneRecords): void {
    this.zone.set(name.toLowerCase(), records);
  }

  async start(): Promise<string> {
    const port = await freeUdpAndTcpPort();
    await new Promise<void>((resolve) => this.#udp.bind(port, '127.0.0.1', () => resolve()));
    await new Promise<void>((resolve) => this.#tcp.listen(port, '127.0.0.1', () => resolve()));
    this.port = port;
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#udp.close(() => resolve()));
    await new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
  }
}

/** TXT strings are at most 255 bytes each; longer values (DKIM keys) are split. */
function chunk(value: string): string[] {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(value.slice(i, i + 255));
  return parts;
}

/** A loopback port free for UDP and for TCP at once. */
async function freeUdpAndTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    const port = await new Promise<number>((resolve) => udp.bind(0, '127.0.0.1', () => resolve(udp.address().port)));
    const tcpFree = await new Promise<boolean>((resolve) => {
      const tcp = net.createServer();
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => tcp.close(() => resolve(true)));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcpFree) return port;
  }
  throw new Error('no loopback port free for both UDP and TCP');
}
