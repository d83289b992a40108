// Outbound SMTP connections, pooled per destination (address:port) with limits on
// connections, messages per connection and messages per second, and the TLS each host must
// offer (transport-security/: DANE, MTA-STS or the configured policy). Modelled on Haraka's
// outbound client pool.
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { SMTPConnection, tlsSocketOf } from '../shared/mail/nodemailer-internals.ts';
// DATA goes out through nodemailer's dot-stuffing stream, made to scan natively (for effect).
import './dot-stuffing.ts';
import { MtrelayError } from '../shared/errors.ts';
import type { Hop } from './routes.ts';
import { daneMismatch, presentedChain } from './transport-security/dane.ts';
import { certificateResult, type TlsResultType, type TlsSession } from './transport-security/tls-report.ts';
import type { TlsRequirement } from './transport-security/transport-security.ts';

export type TlsPolicy = 'opportunistic' | 'required' | 'verified';

export interface PoolLimits {
  connectionsPerDestination: number;
  messagesPerConnection: number;
  /** 0 for no limit. */
  messagesPerSecond: number;
}

/**
 * Limits shared by every address of a mailbox provider (shaping/): its connections count
 * together, its messages are spaced out together, instead of per address.
 */
export interface LaneLimits {
  /** The provider's name: connections to any of its addresses count in this lane. */
  lane: string;
  connections: number;
  messagesPerConnection: number;
  /** 0 for no limit. */
  messagesPerSecond: number;
}

export interface PoolOptions extends PoolLimits {
  heloName: string;
  /** The CAs trusted for verified TLS: the system's and --tls-ca. */
  ca: (string | Buffer)[];
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  /** Each new connection's TLS outcome, for TLS reports. */
  onTlsSession?: (session: TlsSession) => void;
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
  /** The remote's reply while the connection was set up (a 421 greeting, say), which is no recipient's answer. */
  readonly greeting: string | undefined;
  constructor(message: string, reply: string | undefined, tryNextHost: boolean, greeting?: string) {
    super('MTR_ERR_TRANSACTION', message);
    this.reply = reply;
    this.tryNextHost = tryNextHost;
    this.greeting = greeting;
  }
}

/** `TLS policy verified (MTA-STS)`, for replies and logs. */
const policyName = (r: TlsRequirement) => `TLS policy ${r.level} (${r.source})`;

/** Connections that met one requirement meet another with the same key. */
function requirementKey(hop: Hop, r: TlsRequirement): string {
  if (r.level === 'dane') return `dane:${hop.name}:${r.tlsa?.map((t) => `${t.usage}${t.selector}${t.matchingType}${t.data.toString('hex')}`).join(',')}`;
  if (r.level === 'verified') return `verified:${hop.name}`;
  // A testing-mode policy's sessions are reported under that policy: they are not shared with others.
  return r.testing ? `${r.level}:sts-testing:${r.report.domain}:${r.testing.mxListed}` : r.level;
}

interface PooledConnection {
  connection: SMTPConnection;
  sent: number;
  secure: boolean;
  broken: boolean;
}

/** Connections that count against one limit: one destination's, or a whole provider's. */
class Lane {
  open = 0;
  readonly waiting: (() => void)[] = [];
  /** Sends waiting for their turn under the rate; the rate is read when each turn comes, so a backed-off provider slows at once. */
  readonly turns: (() => void)[] = [];
  rate = 0;
  nextSlot = 0;
  timer: NodeJS.Timeout | undefined;
  readonly destinations = new Set<Destination>();
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }
}

/** Connections to one address and port that meet one TLS requirement. */
class Destination {
  readonly idle: PooledConnection[] = [];
  readonly key: string;
  readonly lane: Lane;
  constructor(key: string, lane: Lane) {
    this.key = key;
    this.lane = lane;
  }
}

/** Why an encrypted session does not meet the requirement (undefined: it does), as a TLS-RPT result. */
function tlsShortfall(socket: TLSSocket, hop: Hop, requirement: TlsRequirement): { type: TlsResultType; detail: string } | undefined {
  if (requirement.level === 'dane') {
    const detail = daneMismatch(presentedChain(socket), requirement.tlsa ?? [], hop.name);
    return detail ? { type: 'validation-failure', detail } : undefined;
  }
  if (requirement.level !== 'verified' && !requirement.testing) return undefined;
  if (requirement.testing && !requirement.testing.mxListed) return { type: 'validation-failure', detail: 'MX host not listed in the policy' };
  // Node checked the chain against the trusted CAs and the name against hop.name (the servername).
  if (socket.authorized) return undefined;
  const code = String(socket.authorizationError ?? '');
  const type = certificateResult(code);
  const reason = type === 'certificate-host-mismatch' ? `the certificate does not name ${hop.name}` : type === 'certificate-expired' ? 'the certificate has expired' : 'the certificate is not trusted';
  return { type, detail: `${reason} (${code})` };
}

export class SmtpPool {
  readonly #options: PoolOptions;
  readonly #ca: (string | Buffer)[];
  readonly #destinations = new Map<string, Destination>();
  readonly #lanes = new Map<string, Lane>();
  #closed = false;

  constructor(options: PoolOptions) {
    this.#options = options;
    this.#ca = options.ca;
  }

  /** A destination, in its provider's lane or in a lane of its own. */
  #destination(key: string, laneKey: string): Destination {
    let d = this.#destinations.get(`${laneKey}|${key}`);
    if (d) return d;
    let lane = this.#lanes.get(laneKey);
    if (!lane) this.#lanes.set(laneKey, (lane = new Lane(laneKey)));
    this.#destinations.set(`${laneKey}|${key}`, (d = new Destination(key, lane)));
    lane.destinations.add(d);
    return d;
  }

  async #rateSlot(lane: Lane, rate: number): Promise<void> {
    lane.rate = rate;
    if (!rate && !lane.turns.length) return;
    await new Promise<void>((resolve) => {
      lane.turns.push(resolve);
      this.#nextTurn(lane);
    });
  }

  /** Lets the next send go when its slot has come, at the lane's rate of that moment. */
  #nextTurn(lane: Lane): void {
    if (lane.timer || !lane.turns.length) return;
    const now = Date.now();
    if (!lane.rate || now >= lane.nextSlot) {
      lane.nextSlot = lane.rate ? now + 1000 / lane.rate : now;
      lane.turns.shift()!();
      this.#nextTurn(lane);
      return;
    }
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      this.#nextTurn(lane);
    }, lane.nextSlot - now);
  }

  async #connect(hop: Hop, address: string, requirement: TlsRequirement, plaintext = false): Promise<PooledConnection> {
    const policy = requirement.level;
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
      // The certificate is checked after the handshake (tlsShortfall), before any command but
      // EHLO: the same for every policy, and the reason is known precisely for TLS reports.
      tls: { servername: hop.name, rejectUnauthorized: false, ca: this.#ca, minVersion: 'TLSv1.2' },
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
      const tlsFailed = policy !== 'opportunistic' && (error.code === 'ETLS' || error.command === 'STARTTLS');
      const reply = error.response ? ` (${error.response})` : '';
      if (tlsFailed) this.#report(requirement, hop, address, { type: /STARTTLS/i.test(error.message) && !/initiating/.test(error.message) ? 'starttls-not-supported' : 'validation-failure', detail: error.message });
      throw new TransactionError(`${hop.name}[${address}]:${hop.port}: ${tlsFailed ? `${policyName(requirement)}: ` : ''}${error.message}${reply}`, undefined, true, error.response);
    });
    if (outcome === 'plaintext') return this.#connect(hop, address, requirement, true);
    pooled.secure = connection.secure;
    const socket = tlsSocketOf(connection);
    const shortfall = socket ? tlsShortfall(socket, hop, requirement) : { type: 'starttls-not-supported' as const, detail: 'no STARTTLS' };
    this.#report(requirement, hop, address, shortfall, socket?.localAddress);
    if (shortfall && (policy === 'verified' || policy === 'dane')) {
      connection.close();
      throw new TransactionError(`${hop.name}[${address}]:${hop.port}: ${policyName(requirement)}: ${shortfall.detail}`, undefined, true);
    }
    return pooled;
  }

  #report(requirement: TlsRequirement, hop: Hop, address: string, failure: { type: TlsResultType; detail: string } | undefined, localAddress?: string): void {
    this.#options.onTlsSession?.({
      policy: requirement.report,
      ...(failure ? { failure: { ...failure, mxHost: hop.name, address, ...(localAddress ? { localAddress } : {}) } } : {}),
    });
  }

  async #acquire(d: Destination, limits: Omit<LaneLimits, 'lane'>, hop: Hop, address: string, requirement: TlsRequirement): Promise<PooledConnection> {
    const { lane } = d;
    for (;;) {
      if (this.#closed) throw new TransactionError('the deliverer is shutting down', undefined, false);
      const reused = d.idle.pop();
      if (reused && !reused.broken) return reused;
      if (reused) {
        this.#retire(d, reused, false);
        continue;
      }
      if (lane.open < limits.connections) {
        lane.open++;
        this.#options.onOpenChange?.(lane.key, lane.open);
        try {
          return await this.#connect(hop, address, requirement);
        } catch (error) {
          lane.open--;
          this.#options.onOpenChange?.(lane.key, lane.open);
          this.#wake(lane);
          throw error;
        }
      }
      // The lane is full: an idle connection to another of its addresses makes room (it closes, then wakes a waiter).
      const other = [...lane.destinations].find((o) => o !== d && o.idle.length);
      if (other) this.#retire(other, other.idle.shift()!, true);
      await new Promise<void>((resolve) => lane.waiting.push(resolve));
    }
  }

  #wake(lane: Lane): void {
    lane.waiting.shift()?.();
  }

  #release(d: Destination, pooled: PooledConnection, reusable: boolean, limits: Omit<LaneLimits, 'lane'>): void {
    // A lane whose limit fell (a provider backed off) closes connections until it is within it.
    if (reusable && !pooled.broken && !this.#closed && pooled.sent < limits.messagesPerConnection && d.lane.open <= limits.connections) {
      d.idle.push(pooled);
      this.#wake(d.lane);
    } else {
      this.#retire(d, pooled, !pooled.broken);
    }
  }

  /**
   * Closes a connection (QUIT first when it is healthy). It counts toward the destination's
   * limit until its socket has closed, as the remote server counts it.
   */
  #retire(d: Destination, pooled: PooledConnection, polite: boolean): void {
    const { lane } = d;
    const gone = () => {
      lane.open--;
      this.#options.onOpenChange?.(lane.key, lane.open);
      this.#wake(lane);
    };
    if (pooled.connection.destroyed) {
      gone();
      return;
    }
    pooled.connection.once('end', gone);
    if (polite) pooled.connection.quit();
    else pooled.connection.close();
  }

  /**
   * Sends one transaction to one address of a hop, over a connection that meets `requirement`,
   * within the limits of the host's provider when it has one, else the pool's per destination.
   */
  async send(hop: Hop, address: string, requirement: TlsRequirement, transaction: Transaction, provider?: LaneLimits): Promise<TransactionResult> {
    // A connection is only shared by domains whose hosts must meet the same requirement.
    const key = `${address}:${hop.port}:${requirementKey(hop, requirement)}`;
    const d = this.#destination(key, provider ? `provider:${provider.lane}` : key);
    const limits = provider ?? { connections: this.#options.connectionsPerDestination, messagesPerConnection: this.#options.messagesPerConnection, messagesPerSecond: this.#options.messagesPerSecond };
    await this.#rateSlot(d.lane, limits.messagesPerSecond);
    for (let attempt = 0; ; attempt++) {
      const pooled = await this.#acquire(d, limits, hop, address, requirement);
      const reused = pooled.sent > 0;
      pooled.sent++;
      try {
        return await this.#transact(d, pooled, transaction, limits);
      } catch (error) {
        // An idle connection the server closed meanwhile is no fault of this host: once more, fresh.
        if (error instanceof TransactionError && error.tryNextHost && !error.reply && reused && attempt === 0) continue;
        throw error;
      }
    }
  }

  async #transact(d: Destination, pooled: PooledConnection, transaction: Transaction, limits: Omit<LaneLimits, 'lane'>): Promise<TransactionResult> {
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
      this.#release(d, pooled, true, limits);
      return { accepted: info.accepted, rejected, response: info.response, tls: pooled.secure };
    } catch (error) {
      const e = error as Error & { response?: string; code?: string; rejectedErrors?: (Error & { recipient?: string; response?: string })[] };
      this.#release(d, pooled, false, limits);
      // Every recipient refused at RCPT: an answer per recipient. The connection is not reused:
      // nodemailer's RSET never calls back if the server hangs up on it.
      if (e.code === 'EENVELOPE' && e.rejectedErrors?.length) {
        const rejected = new Map(e.rejectedErrors.map((r) => [r.recipient ?? '', r.response ?? r.message]));
        return { accepted: [], rejected, response: e.response ?? e.message, tls: pooled.secure };
      }
      pooled.broken = true;
      const connectionLevel = ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'ETLS', 'EPROTOCOL'].includes(e.code ?? '') && !e.response;
      throw new TransactionError(`${d.key}: ${e.message}`, e.response, connectionLevel);
    }
  }

  /** Closes idle connections and refuses new work. */
  close(): void {
    this.#closed = true;
    for (const d of this.#destinations.values()) for (const pooled of d.idle.splice(0)) pooled.connection.quit();
    for (const lane of this.#lanes.values()) {
      for (const wake of [...lane.waiting.splice(0), ...lane.turns.splice(0)]) wake();
      clearTimeout(lane.timer);
    }
  }
}
