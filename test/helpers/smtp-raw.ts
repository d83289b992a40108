// A bare SMTP client over a socket, for input no well-behaved client would send.
import net from 'node:net';
import tls from 'node:tls';

export class RawSmtp {
  #socket: net.Socket;
  #buffer = '';
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.#buffer += d.toString('latin1');
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => resolve(new RawSmtp(socket)));
      socket.once('error', reject);
    });
  }

  /** Reads one complete reply (all lines of a multi-line one); undefined when the server closed. */
  async reply(timeoutMs = 15_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /^((?:\d{3}-[^\r\n]*\r?\n)*\d{3}(?: [^\r\n]*)?\r?\n)/.exec(this.#buffer);
      if (match) {
        this.#buffer = this.#buffer.slice(match[1]!.length);
        return match[1]!.trimEnd();
      }
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms; have ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.#socket.destroyed) return resolve();
      this.#socket.write(data, () => resolve());
    });
  }

  /** Sends one command line and returns the reply. */
  async command(line: string, timeoutMs?: number): Promise<string | undefined> {
    await this.write(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** The TLS session to resume later: the last one the server sent (TLS 1.3 sends it after the handshake). */
  tlsSession: Buffer | undefined;

  /** STARTTLS, trusting the given CA (for the name `localhost` unless `servername` says otherwise); with `session`, offering to resume it. Returns the TLS socket. */
  async startTls(ca: Buffer, options: { session?: Buffer; maxVersion?: tls.SecureVersion; servername?: string } = {}): Promise<tls.TLSSocket> {
    const reply = await this.command('STARTTLS');
    if (!reply?.startsWith('220')) throw new Error(`STARTTLS refused: ${reply}`);
    this.#socket.removeAllListeners('data');
    const secure = tls.connect({ socket: this.#socket, ca, servername: 'localhost', ...options });
    secure.on('session', (session: Buffer) => { this.tlsSession = session; });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.#socket = secure;
    this.#attach(secure);
    return secure;
  }

  /** EHLO and AUTH PLAIN with the relay's user name. */
  async login(key: string, user = 'smtp_mt_injection'): Promise<string | undefined> {
    await this.command('EHLO client.test');
    return this.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${key}`).toString('base64')}`);
  }

  get socket(): net.Socket {
    return this.#socket;
  }

  close(): void {
    this.#socket.destroy();
  }
}
