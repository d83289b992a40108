// The mailbox provider of the end-to-end benchmark: an SMTP server on loopback that accepts
// everything and, for each message, reports only its Message-ID and the moment its final dot
// arrived. It runs inside the benchmark process, so arrival times share the load generator's
// clock. Hand-written rather than smtp-server (test/helpers/smtp-sink.ts), which keeps every
// message and parses far more: this sink's CPU is taken from the servers under test.
// Given a tracking host, it also counts the messages that arrived with links or pixels through
// it, so a run whose tracking silently did nothing cannot pass for a fast tracked run.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { THROTTLING_TEXT, tokenBucket } from '../helpers/provider-throttle.ts';

/** Message-ID of a message (without <>), read from its header block; '' when there is none. */
export function messageIdOf(message: Buffer): string {
  const end = message.indexOf('\r\n\r\n');
  const head = message.toString('latin1', 0, end === -1 ? Math.min(message.length, 65536) : end);
  return /^message-id:[ \t]*<([^>\r\n]+)>/im.exec(head)?.[1] ?? '';
}

/** True when the header block carries a DKIM-Signature field. */
export function isDkimSigned(message: Buffer): boolean {
  const end = message.indexOf('\r\n\r\n');
  return /^dkim-signature:/im.test(message.toString('latin1', 0, end === -1 ? Math.min(message.length, 65536) : end));
}

const TERMINATOR = Buffer.from('\r\n.\r\n');
/** Enough of a message's start to hold its header block. */
const HEAD_BYTES = 16 * 1024;

/** What the sink saw of one message. */
interface Arrival {
  id: string;
  arrivedAt: number;
  signed: boolean;
  /** Occurrences of the tracking host in the message. A quoted-printable soft line break can
   *  split one, so this is a lower bound of the tracked links and pixels. */
  trackingUrls: number;
}

/** Occurrences of `needle` in `data`. */
function occurrences(data: Buffer, needle: Buffer): number {
  let count = 0;
  for (let at = data.indexOf(needle); at !== -1; at = data.indexOf(needle, at + needle.length)) count += 1;
  return count;
}

const THROTTLING_REPLY = `421 4.7.28 ${THROTTLING_TEXT}`;

/** One client connection: SMTP commands (pipelined or not), then DATA up to CRLF.CRLF. */
class SinkSession {
  readonly #socket: net.Socket;
  readonly #onMessage: (arrival: Arrival) => void;
  /** Whether a transaction may start now (a throttling sink's rate); false answers MAIL with 421 4.7.28. */
  readonly #admit: () => boolean;
  /** The MAIL of this transaction was refused: its RCPT and DATA are out of sequence. */
  #refused = false;
  readonly #needle: Buffer | undefined;
  /** Bytes kept from one read to the next: enough for a terminator or a needle cut in two. */
  readonly #keep: number;
  #line = '';
  #inData = false;
  /** The last bytes seen in DATA, so a terminator or needle split across reads is still found. */
  #tail: Buffer = Buffer.alloc(0);
  #head: Buffer[] = [];
  #headLength = 0;
  #trackingUrls = 0;

  constructor(socket: net.Socket, name: string, onMessage: (arrival: Arrival) => void, needle?: Buffer, admit: () => boolean = () => true) {
    this.#socket = socket;
    this.#onMessage = onMessage;
    this.#admit = admit;
    this.#needle = needle;
    this.#keep = Math.max(TERMINATOR.length, needle?.length ?? 0) - 1;
    socket.setNoDelay(true);
    socket.on('error', () => undefined); // a client that resets is not the sink's problem
    socket.on('data', (chunk: Buffer) => {
      // Replies to pipelined commands leave in one segment.
      socket.cork();
      this.#read(chunk);
      process.nextTick(() => socket.uncork());
    });
    this.#reply(`220 ${name} ESMTP bench sink`);
  }

  #reply(line: string): void {
    if (this.#socket.writable) this.#socket.write(`${line}\r\n`);
  }

  #read(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#inData) {
        offset = this.#readData(chunk, offset);
        continue;
      }
      const newline = chunk.indexOf(0x0a, offset);
      if (newline === -1) {
        this.#line += chunk.toString('latin1', offset);
        return;
      }
      this.#line += chunk.toString('latin1', offset, newline);
      offset = newline + 1;
      const line = this.#line.replace(/\r$/, '');
      this.#line = '';
      this.#command(line);
    }
  }

  /** Consumes DATA bytes from `offset`; returns where the commands after the final dot start. */
  #readData(chunk: Buffer, offset: number): number {
    const part = chunk.subarray(offset);
    if (this.#headLength < HEAD_BYTES) {
      this.#head.push(part);
      this.#headLength += part.length;
    }
    const window = Buffer.concat([this.#tail, part]);
    const at = window.indexOf(TERMINATOR);
    // The tail is shorter than the needle, so no occurrence is counted twice.
    if (this.#needle) this.#trackingUrls += occurrences(at === -1 ? window : window.subarray(0, at), this.#needle);
    if (at === -1) {
      this.#tail = window.subarray(Math.max(0, window.length - this.#keep));
      return chunk.length;
    }
    const arrivedAt = performance.now();
    const head = Buffer.concat(this.#head);
    this.#onMessage({ id: messageIdOf(head), arrivedAt, signed: isDkimSigned(head), trackingUrls: this.#trackingUrls });
    this.#inData = false;
    this.#head = [];
    this.#headLength = 0;
    this.#trackingUrls = 0;
    this.#reply('250 2.0.0 Ok: queued');
    return offset + (at + TERMINATOR.length - this.#tail.length);
  }

  #command(line: string): void {
    const verb = line.slice(0, 4).toUpperCase();
    switch (verb) {
      case 'EHLO':
        this.#reply('250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 104857600');
        break;
      case 'HELO':
        this.#reply('250 sink.bench.test');
        break;
      case 'MAIL':
        this.#refused = !this.#admit();
        this.#reply(this.#refused ? THROTTLING_REPLY : '250 2.1.0 Ok');
        break;
      case 'RCPT':
        this.#reply(this.#refused ? '503 5.5.1 Error: need MAIL command' : '250 2.1.5 Ok');
        break;
      case 'DATA':
        if (this.#refused) {
          this.#reply('503 5.5.1 Error: need RCPT command');
          break;
        }
        this.#inData = true;
        // DATA's own CRLF counts as the one before a first line that is only a dot.
        this.#tail = Buffer.from('\r\n');
        this.#reply('354 End data with <CR><LF>.<CR><LF>');
        break;
      case 'RSET':
        this.#refused = false;
        this.#reply('250 2.0.0 Ok');
        break;
      case 'NOOP':
        this.#reply('250 2.0.0 Ok');
        break;
      case 'QUIT':
        this.#reply('221 2.0.0 Bye');
        this.#socket.end();
        break;
      default:
        this.#reply('502 5.5.2 Command not implemented');
    }
  }
}

export class CountingSink {
  /** Every message's arrival, including ones whose Message-ID is unknown to the caller. */
  messages = 0;
  /** Of those, the ones that arrived with a DKIM-Signature. */
  signed = 0;
  /** The ones that held the tracking host at least once (with `trackingHost`). */
  tracked = 0;
  /** The tracking host's occurrences over all messages (a lower bound, see Arrival). */
  trackingUrls = 0;
  connections = 0;
  /** MAIL commands answered 421 4.7.28 (with `throttlePerSecond`). */
  throttled = 0;
  /** Set by the benchmark: where each arrival goes. */
  onMessage: (id: string, arrivedAt: number) => void = () => undefined;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  /**
   * `trackingHost`: the host of tracked links and pixels (e.g. track.bench.test), to count tracked
   * arrivals. `throttlePerSecond`: answer like a provider under pressure, 421 4.7.28 to each MAIL
   * beyond that many a second (a token bucket holding one second's worth).
   */
  constructor(name = 'sink.bench.test', trackingHost?: string, throttlePerSecond = 0) {
    const needle = trackingHost ? Buffer.from(trackingHost, 'latin1') : undefined;
    const bucket = throttlePerSecond ? tokenBucket(throttlePerSecond) : () => true;
    const admit = () => {
      if (bucket()) return true;
      this.throttled += 1;
      return false;
    };
    this.#server = net.createServer((socket) => {
      this.connections += 1;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      new SinkSession(socket, name, (arrival) => {
        this.messages += 1;
        if (arrival.signed) this.signed += 1;
        if (arrival.trackingUrls > 0) this.tracked += 1;
        this.trackingUrls += arrival.trackingUrls;
        this.onMessage(arrival.id, arrival.arrivedAt);
      }, needle, admit);
    });
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  listen(host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, host, () => resolve());
    });
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
