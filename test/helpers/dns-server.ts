// A real DNS server on loopback (UDP and TCP on the same port, as resolvers expect when a
// long answer is truncated over UDP) answering from a zone the test controls.
import dgram from 'node:dgram';
import dns2 from 'dns2';
import net, { type AddressInfo } from 'node:net';

// dns2's type declarations lag its API (RCODE, plain-object answers): describe what is used.
interface DnsAnswer { name: string; type: number; class: number; ttl: number; address?: string; domain?: string; exchange?: string; priority?: number; data?: string[] }
interface DnsResponse { header: { rcode: number }; answers: DnsAnswer[] }
interface DnsRequest { questions: { name: string; type: number }[] }
const Packet = (dns2 as unknown as { Packet: {
  TYPE: { A: number; AAAA: number; MX: number; TXT: number; CNAME: number };
  CLASS: { IN: number };
  RCODE: { NXDOMAIN: number; SERVFAIL: number };
  createResponseFromRequest(request: DnsRequest): DnsResponse;
} }).Packet;

export interface ZoneRecords {
  A?: string[];
  AAAA?: string[];
  MX?: { exchange: string; priority: number }[];
  TXT?: string[];
  CNAME?: string;
  /** Answer SERVFAIL for this name, as a broken authoritative server would. */
  servfail?: boolean;
  /** Answer SERVFAIL only to A and AAAA queries (MX answers "no such record"). */
  servfailAddresses?: boolean;
}

export class TestDnsServer {
  readonly zone = new Map<string, ZoneRecords>();
  #server: ReturnType<typeof dns2.createServer>;
  port = 0;

  constructor() {
    this.#server = dns2.createServer({
      udp: true,
      tcp: true,
      handle: (incoming, reply) => {
        const request = incoming as unknown as DnsRequest;
        const send = reply as unknown as (response: DnsResponse) => void;
        const response = Packet.createResponseFromRequest(request);
        const question = request.questions[0]!;
        const name = question.name.toLowerCase().replace(/\.$/, '');
        const records = this.zone.get(name);
        if (!records) response.header.rcode = Packet.RCODE.NXDOMAIN;
        else if (records.servfail || (records.servfailAddresses && (question.type === Packet.TYPE.A || question.type === Packet.TYPE.AAAA))) {
          response.header.rcode = Packet.RCODE.SERVFAIL;
        }
        else {
          const base = { name: question.name, class: Packet.CLASS.IN, ttl: 60 };
          if (question.type === Packet.TYPE.A) for (const address of records.A ?? []) response.answers.push({ ...base, type: Packet.TYPE.A, address });
          if (question.type === Packet.TYPE.AAAA) for (const address of records.AAAA ?? []) response.answers.push({ ...base, type: Packet.TYPE.AAAA, address });
          if (question.type === Packet.TYPE.MX) for (const mx of records.MX ?? []) response.answers.push({ ...base, type: Packet.TYPE.MX, ...mx });
          if (question.type === Packet.TYPE.CNAME && records.CNAME) response.answers.push({ ...base, type: Packet.TYPE.CNAME, domain: records.CNAME });
          if (question.type === Packet.TYPE.TXT) for (const data of records.TXT ?? []) response.answers.push({ ...base, type: Packet.TYPE.TXT, data: chunk(data) });
        }
        send(response);
      },
    });
  }

  set(name: string, records: ZoneRecords): void {
    this.zone.set(name.toLowerCase(), records);
  }

  async start(): Promise<string> {
    const port = await freeUdpAndTcpPort();
    await this.#server.listen({ udp: { port, address: '127.0.0.1' }, tcp: { port, address: '127.0.0.1' } });
    const addresses = this.#server.addresses() as { udp?: AddressInfo; tcp?: AddressInfo };
    this.port = addresses.udp!.port;
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await this.#server.close();
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
