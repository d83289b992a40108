// Outbound SMTP connections, pooled per destination (address:port) with limits on
// connections, messages per connection and messages per second, and the STARTTLS policy
// of the recipient domain. Modelled on Haraka's outbound client pool.
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { SMTPConnection } from '../shared/mail/nodemailer-internals.ts';
// DATA goes out through nodemailer's dot-stuffing stream, made to scan natively (for effect).
import './dot-stuffing.ts';
import { MtrelayError } from '../shared/errors.ts';
import type { Hop } from './routes.ts';

export type TlsPolicy = 'opportunistic' | 'required' | 'verified';

export interface PoolLimits {
  connectionsPerDestination: number;
  messagesPerConnection: number;
  /** 0 for no limit. */
  messagesPerSecond: number;
}

export interface PoolOptions extends PoolLimits {
  heloName: string;
  extraCa: Buffer[];
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  tlsPolicy: (domain: string) => TlsPolicy;
  /** Connections opened now, by destination, for metrics. */
  onOpenChange?: (destination: string, open: number) => void;
}

export interface Transaction {
  from: string;
  to: string[];
  /** The message, or its pieces in order (sent as they are, never joined: a 10 MB body is not copied per copy). */
  message: Buffer | Buffer[];
}

/** The remote's answer per recipient, or why the whole transaction failed. */
export interface TransactionResult {
  accepted: string[];
  /** Recipient → the remote's reply (RCPT rejected). */
  rejected: Map<string, string>;
  response: string;
  tls: boolean;
}

/** The transaction did not get a per-recipient answer: connection, TLS, greeting or DATA failure. */
export class TransactionError extends MtrelayError {
  /** The remote's reply, when there was one (e.g. "554 5.6.0 …" to DATA). */
  readonly reply: string | undefined;
  /** True when another host of the same domain could be tried (connection-level trouble). */
  readonly tryNextHost: boolean;
  constructor(message: string, reply: string | undefined, tryNextHost: boolean) {
    super('MTR_ERR_TRANSACTION', message);
    this.reply = reply;
    this.tryNextHost = tryNextHost;
  }
}

interface PooledConnection {
  connection: SMTPConnection;
  sent: number;
  secure: boolean;
  broken: boolean;
}

class Destination {
  readonly idle: PooledConnection[] = [];
  open = 0;
  readonly waiting: (() => void)[] = [];
  nextSlot = 0;
}

export class SmtpPool {
  readonly #options: PoolOptions;
  readonly #destinations = new Map<string, Destination>();
  #closed = false;

  constructor(options: PoolOptions) {
    this.#options = options;
  }

  #destination(key: string): Destination {
    let d = this.#destinations.get(key);
    if (!d) this.#destinations.set(key, (d = new Destination()));
    return d;
  }

  async #rateSlot(d: Destination): Promise<void> {
    const rate = this.#options.messagesPerSecond;
    if (!rate) return;
    const now = Date.now();
    const slot = Math.max(now, d.nextSlot);
    d.nextSlot = slot + 1000 / rate;
    if (slot > now) await new Promise((r) => setTimeout(r, slot - now));
  }

  async #connect(hop: Hop, address: string, domain: string, plaintext = false): Promise<PooledConnection> {
    const policy = this.#options.tlsPolicy(domain);
    const connection = new SMTPConnection({
      host: address,
      port: hop.port,
      name: this.#options.heloName,
      secure: false,
      ignoreTLS: plaintext,
      opportunisticTLS: policy === 'opportunistic' && !plaintext,
      requireTLS: policy !== 'opportunistic',
      connectionTimeout: this.#options.connectTimeoutMs,
      greetingTimeout: this.#options.connectTimeoutMs,
      socketTimeout: this.#options.socketTimeoutMs,
      allowInternalNetworkInterfaces: true,
      tls: policy === 'verified'
        ? { servername: hop.name, rejectUnauthorized: true, ca: [...rootCertificates, ...this.#options.extraCa], minVersion: 'TLSv1.2' }
        : { servername: hop.name, rejectUnauthorized: false },
    });
    const pooled: PooledConnection = { connection, sent: 0, secure: false, broken: false };
    connection.on('error', () => { pooled.broken = true; });
    connection.on('end', () => { pooled.broken = true; });
    // nodemailer reports a failed connect (refused, TLS required but not offered, bad
    // greeting) as an 'error' event, not through the connect callback.
    const outcome = await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.once('end', () => reject(new Error('connection closed during the greeting')));
      connection.connect((error?: Error | null) => (error ? reject(error) : resolve()));
    }).catch(async (error: Error & { response?: string; code?: string; command?: string }) => {
      connection.close();
      // Opportunistic TLS means mail goes out even when the server's TLS is broken (RFC 3207 4.1).
      if (policy === 'opportunistic' && !plaintext && error.code === 'ETLS') return 'plaintext' as const;
      // Trouble before the first transaction is the host's, not the message's: try the next one.
      const tls = policy !== 'opportunistic' && (error.code === 'ETLS' || error.command === 'STARTTLS') ? `TLS policy ${policy}: ` : '';
      const reply = error.response ? ` (${error.response})` : '';
      throw new TransactionError(`${hop.name}[${address}]:${hop.port}: ${tls}${error.message}${reply}`, undefined, true);
    });
    if (outcome === 'plaintext') return this.#connect(hop, address, domain, true);
    pooled.secure = connection.secure;
    return pooled;
  }

  async #acquire(key: string, d: Destination, hop: Hop, address: string, domain: string): Promise<PooledConnection> {
    for (;;) {
      if (this.#closed) throw new TransactionError('the deliverer is shutting down', undefined, false);
      const reused = d.idle.pop();
      if (reused && !reused.broken) return reused;
      if (reused) {
        this.#retire(key, d, reused, false);
        continue;
      }
      if (d.open < this.#options.connectionsPerDestination) {
        d.open++;
        this.#options.onOpenChange?.(key, d.open);
        try {
          return await this.#connect(hop, address, domain);
        } catch (error) {
          d.open--;
          this.#options.onOpenChange?.(key, d.open);
          this.#wake(d);
          throw error;
        }
      }
      await new Promise<void>((resolve) => d.waiting.push(resolve));
    }
  }

  #wake(d: Destination): void {
    d.waiting.shift()?.();
  }

  #release(key: string, d: Destination, pooled: PooledConnection, reusable: boolean): void {
    if (reusable && !pooled.broken && !this.#closed && pooled.sent < this.#options.messagesPerConnection) {
      d.idle.push(pooled);
      this.#wake(d);
    } else {
      this.#retire(key, d, pooled, !pooled.broken);
    }
  }

  /**
   * Closes a connection (QUIT first when it is healthy). It counts toward the destination's
   * limit until its socket has closed, as the remote server counts it.
   */
  #retire(key: string, d: Destination, pooled: PooledConnection, polite: boolean): void {
    const gone = () => {
      d.open--;
      this.#options.onOpenChange?.(key, d.open);
      this.#wake(d);
    };
    if (pooled.connection.destroyed) {
      gone();
      return;
    }
    pooled.connection.once('end', gone);
    if (polite) pooled.connection.quit();
    else pooled.connection.close();
  }

  /** Sends one transaction to one address of a hop. */
  async send(hop: Hop, address: string, domain: string, transaction: Transaction): Promise<TransactionResult> {
    // A connection is only shared by domains with the same TLS policy (and, when verified, the same name).
    const policy = this.#options.tlsPolicy(domain);
    const key = `${address}:${hop.port}:${policy}${policy === 'verified' ? `:${hop.name}` : ''}`;
    const d = this.#destination(key);
    await this.#rateSlot(d);
    for (let attempt = 0; ; attempt++) {
      const pooled = await this.#acquire(key, d, hop, address, domain);
      const reused = pooled.sent > 0;
      pooled.sent++;
      try {
        return await this.#transact(key, d, pooled, transaction);
      } catch (error) {
        // An idle connection the server closed meanwhile is no fault of this host: once more, fresh.
        if (error instanceof TransactionError && error.tryNextHost && !error.reply && reused && attempt === 0) continue;
        throw error;
      }
    }
  }

  async #transact(key: string, d: Destination, pooled: PooledConnection, transaction: Transaction): Promise<TransactionResult> {
    try {
      const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) => {
        const message = Array.isArray(transaction.message) ? Readable.from(transaction.message, { objectMode: false }) : transaction.message;
        pooled.connection.send({ from: transaction.from, to: transaction.to }, message, (error, result) => (error ? reject(error) : resolve(result)));
      });
      const rejected = new Map<string, string>();
      for (const e of info.rejectedErrors ?? []) {
        const recipient = (e as { recipient?: string }).recipient;
        if (recipient) rejected.set(recipient, (e as { response?: string }).response ?? e.message);
      }
      for (const r of info.rejected) if (!rejected.has(r)) rejected.set(r, info.response);
      this.#release(key, d, pooled, true);
      return { accepted: info.accepted, rejected, response: info.response, tls: pooled.secure };
    } catch (error) {
      const e = error as Error & { response?: string; code?: string; rejectedErrors?: (Error & { recipient?: string; response?: string })[] };
      this.#release(key, d, pooled, false);
      // Every recipient refused at RCPT: an answer per recipient. The connection is not reused:
      // nodemailer's RSET never calls back if the server hangs up on it.
      if (e.code === 'EENVELOPE' && e.rejectedErrors?.length) {
        const rejected = new Map(e.rejectedErrors.map((r) => [r.recipient ?? '', r.response ?? r.message]));
        return { accepted: [], rejected, response: e.response ?? e.message, tls: pooled.secure };
      }
      pooled.broken = true;
      const connectionLevel = ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'ETLS', 'EPROTOCOL'].includes(e.code ?? '') && !e.response;
      throw new TransactionError(`${key}: ${e.message}`, e.response, connectionLevel);
    }
  }

  /** Closes idle connections and refuses new work. */
  close(): void {
    this.#closed = true;
    for (const d of this.#destinations.values()) {
      for (const pooled of d.idle.splice(0)) pooled.connection.quit();
      for (const wake of d.waiting.splice(0)) wake();
    }
  }
}
