// A "smart sink": a real SMTP server playing a mailbox provider, with TLS from the test CA,
// answering each recipient as scripted (250, 4xx, 5xx, drop mid-DATA, stall, slow) and keeping
// every message it accepted.
import { readFileSync } from 'node:fs';
// Scripted replies carry their own enhanced status codes, as real providers' do.
import '../../relay/smtp-server-patches.ts';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { THROTTLING_TEXT, tokenBucket } from './provider-throttle.ts';

export type Behaviour = 'accept' | `${4 | 5}${number}${number} ${string}` | 'drop' | 'stall' | 'slow';

export interface Received {
  mailFrom: string;
  rcptTo: string[];
  message: Buffer;
  tls: boolean;
  host: string;
}

export interface SinkOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
  /** Offer STARTTLS (default true when a certificate is given). */
  starttls?: boolean;
  /** Answer like a provider under pressure: beyond this many messages a second, MAIL FROM gets 421 4.7.28. */
  throttlePerSecond?: number;
}

export class SmtpSink {
  readonly received: Received[] = [];
  /** Behaviour per recipient address (lower case); others are accepted. */
  readonly script = new Map<string, Behaviour>();
  readonly host: string;
  readonly port: number;
  connections = 0;
  /** MAIL FROMs answered 421 4.7.28 (throttlePerSecond). */
  throttled = 0;
  open = 0;
  maxOpen = 0;
  /** Messages accepted per connection (session id). */
  readonly perConnection = new Map<string, number>();
  #server: SMTPServer;
  #waiters: (() => void)[] = [];

  constructor(options: SinkOptions) {
    this.host = options.host;
    this.port = options.port;
    const tls = options.tls && options.starttls !== false;
    const admit = options.throttlePerSecond ? tokenBucket(options.throttlePerSecond) : () => true;
    this.#server = new SMTPServer({
      name: options.host,
      authOptional: true,
      disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      ...(tls ? { key: readFileSync(options.tls!.key), cert: readFileSync(options.tls!.cert) } : {}),
      hideENHANCEDSTATUSCODES: false,
      logger: false,
      onConnect: (_session, callback) => {
        this.connections++;
        this.maxOpen = Math.max(this.maxOpen, ++this.open);
        callback();
      },
      onClose: () => {
        this.open--;
      },
      onMailFrom: (_address, _session, callback) => {
        if (!admit()) {
          this.throttled++;
          callback(Object.assign(new Error(`4.7.28 ${THROTTLING_TEXT}`), { responseCode: 421 }));
          return;
        }
        callback();
      },
      onRcptTo: (address, _session, callback) => {
        const behaviour = this.script.get(address.address.toLowerCase()) ?? 'accept';
        if (/^[45]\d\d /.test(behaviour)) {
          const error = new Error(behaviour.slice(4)) as Error & { responseCode: number };
          error.responseCode = Number(behaviour.slice(0, 3));
          callback(error);
          return;
        }
        callback();
      },
      onData: (stream, session, callback) => this.#onData(stream, session, callback),
    });
    this.#server.on('error', () => undefined); // connections the test drops on purpose
  }

  #onData(stream: NodeJS.ReadableStream, session: SMTPServerSession, callback: (error?: Error | null) => void): void {
    const behaviours = session.envelope.rcptTo.map((r) => this.script.get(r.address.toLowerCase()));
    const chunks: Buffer[] = [];
    if (behaviours.includes('drop')) {
      // The connection goes away in the middle of DATA, as a crashing provider's would.
      stream.once('data', () => this.#socketOf(session.id)?.destroy());
    }
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (behaviours.includes('drop') || behaviours.includes('stall')) return; // never answer
      this.perConnection.set(session.id, (this.perConnection.get(session.id) ?? 0) + 1);
      this.received.push({
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        rcptTo: session.envelope.rcptTo.map((r) => r.address),
        message: Buffer.concat(chunks),
        tls: Boolean(session.secure),
        host: this.host,
      });
      for (const w of this.#waiters.splice(0)) w();
      if (behaviours.includes('slow')) setTimeout(() => callback(), 1500); // a busy provider
      else callback();
    });
  }

  #socketOf(sessionId: string): { destroy(): void } | undefined {
    for (const connection of this.#server.connections) {
      const c = connection as unknown as { id: string; _socket?: { destroy(): void } };
      if (c.id === sessionId) return c._socket;
    }
    return undefined;
  }

  /** Messages received for an address. */
  for(address: string): Received[] {
    return this.received.filter((r) => r.rcptTo.some((a) => a.toLowerCase() === address.toLowerCase()));
  }

  async waitFor(address: string, count = 1, timeoutMs = 20_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.for(address).length < count) {
      if (Date.now() > deadline) throw new Error(`${this.host} received ${this.for(address).length} of ${count} messages for ${address}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    return this.for(address);
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.server.once('error', reject);
      this.#server.listen(this.port, this.host, () => resolve());
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
