// A lean SMTP client for load generation: one socket, replies parsed as they arrive,
// MAIL/RCPT/DATA pipelined (RFC 2920), every wait bounded by a timeout.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';

export interface SmtpTarget {
  host: string;
  port: number;
  /** AUTH PLAIN credentials; absent: no AUTH (Postfix trusts 127.0.0.0/8 instead). */
  auth?: { user: string; password: string };
  /** STARTTLS, trusting this CA and checking this name; with `sessions`, resuming TLS sessions as a client with a session cache does. */
  starttls?: { ca: Buffer; servername: string; sessions?: TlsSessionCache };
}

/** A client's TLS session cache for one server: the last session it was given is offered on the next connection. */
export class TlsSessionCache {
  session: Buffer | undefined;
  full = 0;
  resumed = 0;

  /** Resumed handshakes as a share of all, 0 to 1. */
  get resumedShare(): number {
    return this.full + this.resumed > 0 ? this.resumed / (this.full + this.resumed) : 0;
  }
}

export interface Reply {
  code: number;
  text: string;
}

export interface SendResult {
  /** The reply code that decided the transaction (the final reply after the dot, or the first refusal). */
  code: number;
  /** Milliseconds from writing the final dot to the final reply; absent when DATA was refused. */
  latencyMs?: number;
}

interface Waiter {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class SmtpConnection {
  readonly timeoutMs: number;
  #socket: net.Socket;
  #partial = '';
  #lines: string[] = [];
  #ready: Reply[] = [];
  #waiting: Waiter[] = [];
  #failure: Error | undefined;

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.#socket = socket;
    this.timeoutMs = timeoutMs;
    this.#attach(socket);
  }

  static connect(target: SmtpTarget, timeoutMs = 30_000): Promise<SmtpConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: target.host, port: target.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => socket.destroy(new Error(`connect timeout after ${timeoutMs} ms`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', reject);
        resolve(new SmtpConnection(socket, timeoutMs));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  #attach(socket: net.Socket): void {
    socket.on('data', this.#onData);
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('connection closed by the server')));
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#partial += chunk.toString('latin1');
    for (let end = this.#partial.indexOf('\r\n'); end !== -1; end = this.#partial.indexOf('\r\n')) {
      const line = this.#partial.slice(0, end);
      this.#partial = this.#partial.slice(end + 2);
      this.#lines.push(line);
      if (line[3] === '-') continue; // a multi-line reply goes on
      const reply = { code: Number(line.slice(0, 3)), text: this.#lines.join('\n') };
      this.#lines = [];
      const waiter = this.#waiting.shift();
      if (waiter) {
        clearTimeout(waiter.timer);
        waiter.resolve(reply);
      } else {
        this.#ready.push(reply);
      }
    }
  };

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiting.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(this.#failure);
    }
  }

  /** The next complete reply. */
  reply(): Promise<Reply> {
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#fail(new Error(`no reply within ${this.timeoutMs} ms`));
          this.#socket.destroy();
        }, this.timeoutMs),
      };
      this.#waiting.push(waiter);
    });
  }

  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  async command(line: string, expected: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    const reply = await this.reply();
    if (reply.code !== expected) throw new Error(`${line.split(' ')[0]}: expected ${expected}, got ${reply.text}`);
    return reply;
  }

  /** Greeting, EHLO, then STARTTLS and AUTH PLAIN when the target asks for them. */
  async handshake(target: SmtpTarget): Promise<void> {
    const greeting = await this.reply();
    if (greeting.code !== 220) throw new Error(`greeting: ${greeting.text}`);
    await this.command('EHLO bench.client.test', 250);
    if (target.starttls) {
      await this.command('STARTTLS', 220);
      await this.#upgrade(target.starttls);
      await this.command('EHLO bench.client.test', 250);
    }
    if (target.auth) {
      const token = Buffer.from(`\0${target.auth.user}\0${target.auth.password}`).toString('base64');
      await this.command(`AUTH PLAIN ${token}`, 235);
    }
  }

  async #upgrade(options: NonNullable<SmtpTarget['starttls']>): Promise<void> {
    const plain = this.#socket;
    plain.removeListener('data', this.#onData);
    const { sessions } = options;
    const secure = tls.connect({ socket: plain, ca: options.ca, servername: options.servername, ...(sessions?.session ? { session: sessions.session } : {}) });
    if (sessions) secure.on('session', (session: Buffer) => { sessions.session = session; });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('TLS handshake timeout')), this.timeoutMs);
      secure.once('secureConnect', () => { clearTimeout(timer); resolve(); });
      secure.once('error', (error) => { clearTimeout(timer); reject(error); });
    });
    if (sessions) {
      if (secure.isSessionReused()) sessions.resumed += 1;
      else sessions.full += 1;
    }
    this.#socket = secure;
    this.#attach(secure);
  }

  /** One transaction: MAIL, RCPT and DATA in one write, then the message (which must end
   *  with CRLF.CRLF). Latency is timed from writing the final dot to the final reply. */
  async send(from: string, to: string, message: Buffer): Promise<SendResult> {
    this.write(`MAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
    const mail = await this.reply();
    const rcpt = await this.reply();
    const data = await this.reply();
    if (data.code !== 354) {
      this.write('RSET\r\n');
      await this.reply();
      return { code: mail.code !== 250 ? mail.code : rcpt.code !== 250 ? rcpt.code : data.code };
    }
    this.write(message);
    const sent = performance.now();
    const final = await this.reply();
    return { code: final.code, latencyMs: performance.now() - sent };
  }

  /** QUIT politely (bounded wait), then close. */
  async quit(): Promise<void> {
    if (!this.#failure) {
      this.write('QUIT\r\n');
      await this.reply().catch(() => undefined);
    }
    this.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
