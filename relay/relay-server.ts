// The SMTP submission service: listeners on the submission, alternate and implicit-TLS
// ports, AUTH with API keys, header checks after the final dot, and a 250 only once Kafka
// has the message.
import './smtp-server-patches.ts';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Logger } from 'pino';
import { sha256Hex } from '../shared/config/hash.ts';
import type { ConfigStore } from '../shared/config/store.ts';
import { newTransmissionId } from '../shared/ids.ts';
import { submissionHeaders, type Submission } from '../shared/submission-record.ts';
import { recipients } from '../shared/mail/recipients.ts';
import type { Reservation, UsageCounters } from '../shared/usage/usage-counters.ts';
import { QueueUnavailableError, StorageFullError, type SubmissionQueue } from '../shared/queue.ts';
import { REPLIES, SmtpReply, replyText, smtpReply } from '../shared/smtp-replies.ts';
import type { AuthThrottle } from './auth-throttle.ts';
import { checkMessage } from './message-checks.ts';
import { acceptProxyV2 } from './proxy-protocol.ts';
import type { RelayMetrics } from './metrics.ts';
import type { PatchedServerOptions } from './smtp-server-patches.ts';
import { SESSION_LIFETIME_SECONDS } from './tls-tickets.ts';
import { InFlightBudget } from './in-flight-budget.ts';
import { LimitRefusal, SendLimits } from './send-limits.ts';
import { TLS_OPTIONS, type TlsMaterial } from './tls-files.ts';

export interface ListenerSpec {
  name: 'submission' | 'alt' | 'smtps';
  port: number;
  implicitTls: boolean;
}

export interface RelaySettings {
  host: string;
  hostname: string;
  listeners: ListenerSpec[];
  /** AUTH user names accepted, compared without regard to case. */
  authUsers: string[];
  allowAuthWithoutTls: boolean;
  maxMessageBytes: number;
  maxHeaderBytes: number;
  maxRecipients: number;
  maxAttrAddresses: number;
  maxClients: number;
  /** Connections at once from one client address, across listeners (0: no limit). */
  maxConnectionsPerAddress: number;
  /** Bytes of message data held at once across all sessions (InFlightBudget). */
  maxInFlightBytes: number;
  commandTimeoutMs: number;
  drainTimeoutMs: number;
  sandboxDomain: string;
  /** Messages (recipients) per namespace per 24 h from the sandbox domain, across the fleet. */
  sandboxQuota: number;
  /** true, or the addresses of load balancers allowed to send a PROXY protocol header. */
  proxyProtocol: boolean | string[];
  /** Wait before the greeting, refusing clients that talk first (an MX defence; 0 on submission ports). */
  earlyTalkerDelayMs: number;
}

export interface RelayDeps {
  settings: RelaySettings;
  store: ConfigStore;
  queue: SubmissionQueue;
  throttle: AuthThrottle;
  /** The fleet's shared counts: keys' limits and the sandbox quota are checked on them. */
  counters: UsageCounters;
  metrics: RelayMetrics;
  logger: Logger;
  tls: TlsMaterial | undefined;
  /** The session ticket key to start with (TicketKeys keeps it current through setTicketKey). */
  ticketKey: Buffer;
}

interface SessionUser {
  keyId: string;
  keySha256: string;
  namespace: string;
}

/** What the relay keeps per SMTP session: its child logger and the negotiated TLS protocol. */
interface SessionState {
  log: Logger;
  tls: string;
  /** Counted in the per-address connection count (until its close). */
  counted?: boolean;
  /** Bytes of the DATA in progress held in the in-flight budget; given back at the reply, or at the close of a dropped session. */
  reserved: number;
  /** The data has ended and the message is being stored: its bytes are held until the reply, even if the client has gone. */
  storing?: boolean;
}

export class RelayServer {
  readonly #deps: RelayDeps;
  readonly #servers = new Map<ListenerSpec['name'], SMTPServer>();
  /** Per session, collected with it (the session object lives as long as its connection). */
  readonly #sessions = new WeakMap<SMTPServerSession, SessionState>();
  readonly #limits: SendLimits;
  readonly #budget: InFlightBudget;
  /** Open connections by client address, across listeners. */
  readonly #perAddress = new Map<string, number>();
  #draining = false;
  #ticketKey: Buffer;

  constructor(deps: RelayDeps) {
    this.#deps = deps;
    this.#limits = new SendLimits(deps.counters, deps.settings.sandboxQuota);
    this.#budget = new InFlightBudget(deps.settings.maxInFlightBytes);
    deps.metrics.probes.inFlightBytes = () => this.#budget.used;
    this.#ticketKey = deps.ticketKey;
  }

  get draining(): boolean {
    return this.#draining;
  }

  async listen(): Promise<void> {
    for (const listener of this.#deps.settings.listeners) {
      if (listener.implicitTls && !this.#deps.tls) {
        throw new Error(`the ${listener.name} listener (port ${listener.port}) needs --tls-cert and --tls-key`);
      }
      const server = this.#create(listener);
      // smtp-server reads PROXY v1 only; v2 (AWS NLB) headers are translated in front of it.
      if (this.#deps.settings.proxyProtocol) acceptProxyV2(server.server, this.#deps.settings.proxyProtocol);
      this.#servers.set(listener.name, server);
      await new Promise<void>((resolve, reject) => {
        server.server.once('error', reject);
        server.listen(listener.port, this.#deps.settings.host, () => resolve());
      });
      server.on('error', (error) => this.#deps.logger.warn({ err: error, listener: listener.name }, 'SMTP listener error'));
    }
  }

  /** The port a listener is bound to (useful with port 0). */
  port(name: ListenerSpec['name']): number {
    const server = this.#servers.get(name);
    if (!server) throw new Error(`no ${name} listener`);
    return (server.server.address() as AddressInfo).port;
  }

  updateTls(material: TlsMaterial): void {
    for (const server of this.#servers.values()) server.updateSecureContext({ ...material, ...TLS_OPTIONS });
  }

  /** A new session ticket key: tickets issued from now on can be resumed on every relay holding it. */
  setTicketKey(key: Buffer): void {
    this.#ticketKey = key;
    for (const server of this.#servers.values()) server.updateSecureContext({ ticketKeys: key });
  }

  /** Stops accepting, lets transactions in DATA finish and be answered, then resolves. */
  async drain(): Promise<void> {
    this.#draining = true;
    await Promise.all([...this.#servers.values()].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  #create(listener: ListenerSpec): SMTPServer {
    const { settings, metrics } = this.#deps;
    const options: SMTPServerOptions & PatchedServerOptions = {
      name: settings.hostname,
      banner: 'mtrelay',
      hideENHANCEDSTATUSCODES: false,
      secure: listener.implicitTls,
      ...(this.#deps.tls ? { ...this.#deps.tls, ...TLS_OPTIONS } : {}),
      // Resumable sessions on every replica: the same ticket key, and the same session context.
      ticketKeys: this.#ticketKey,
      sessionTimeout: SESSION_LIFETIME_SECONDS,
      sessionIdContext: 'mtrelay',
      disabledCommands: this.#deps.tls ? [] : ['STARTTLS'],
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: settings.allowAuthWithoutTls,
      authRequiredMessage: replyText('AUTH_REQUIRED'),
      size: settings.maxMessageBytes,
      maxRecipients: settings.maxRecipients,
      maxClients: settings.maxClients,
      socketTimeout: settings.commandTimeoutMs,
      closeTimeout: settings.drainTimeoutMs,
      useProxy: settings.proxyProtocol,
      earlyTalkerDelayMs: settings.earlyTalkerDelayMs,
      disableReverseLookup: true,
      hideDSN: true,
      logger: false,
      onConnect: (session, callback) => {
        metrics.connections.inc({ listener: listener.name });
        metrics.openConnections.inc({ listener: listener.name });
        this.#count(session);
        callback(this.#refuseConnection(session) ?? undefined);
      },
      onSecure: (socket, session, callback) => {
        // The negotiated protocol: session.tlsOptions.version is the cipher's minimum version.
        const protocol = (socket as TLSSocket).getProtocol?.() ?? 'unknown';
        this.#session(session).tls = protocol;
        metrics.tlsHandshakes.inc({ listener: listener.name, protocol });
        callback();
      },
      onClose: (session) => {
        metrics.openConnections.dec({ listener: listener.name });
        this.#uncount(session);
      },
      onAuth: (auth, session, callback) => this.#onAuth(auth, session, callback),
      onMailFrom: (_address, session, callback) => callback(this.#refuseTransaction(session) ?? undefined),
      onRcptTo: (_address, session, callback) => callback(this.#refuseRecipient(session) ?? undefined),
      onData: (stream, session, callback) => this.#onData(stream, session, callback),
    };
    return new SMTPServer(options);
  }

  #session(session: SMTPServerSession): SessionState {
    let state = this.#sessions.get(session);
    if (!state) {
      state = { log: this.#deps.logger.child({ session: session.id, client: session.remoteAddress }), tls: 'none', reserved: 0 };
      this.#sessions.set(session, state);
    }
    return state;
  }

  #count(session: SMTPServerSession): void {
    this.#perAddress.set(session.remoteAddress, (this.#perAddress.get(session.remoteAddress) ?? 0) + 1);
    this.#session(session).counted = true;
  }

  #uncount(session: SMTPServerSession): void {
    const state = this.#sessions.get(session);
    if (state && !state.storing) this.#releaseData(state);
    if (!state?.counted) return;
    state.counted = false;
    const left = (this.#perAddress.get(session.remoteAddress) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(session.remoteAddress, left);
    else this.#perAddress.delete(session.remoteAddress);
  }

  #refuseConnection(session: SMTPServerSession): SmtpReply | undefined {
    if (this.#draining) return smtpReply('SHUTTING_DOWN');
    if (!this.#deps.store.loaded) return smtpReply('NOT_READY');
    const limit = this.#deps.settings.maxConnectionsPerAddress;
    if (limit > 0 && (this.#perAddress.get(session.remoteAddress) ?? 0) > limit) {
      this.#deps.metrics.refusedConnections.inc({ reason: 'per_address_limit' });
      return smtpReply('TOO_MANY_CONNECTIONS', { address: session.remoteAddress, limit });
    }
    const blockedFor = this.#deps.throttle.blockedFor(session.remoteAddress);
    return blockedFor ? smtpReply('AUTH_THROTTLED', { address: session.remoteAddress, seconds: blockedFor }) : undefined;
  }

  /** MAIL FROM: refused when the session's key was revoked since AUTH, or has reached a
   *  sending limit. (While draining, smtp-server itself answers every command with 421 4.4.2
   *  Server shutting down.) */
  #refuseTransaction(session: SMTPServerSession): SmtpReply | undefined {
    const user = session.user as SessionUser | undefined;
    if (!user) return undefined;
    const check = this.#deps.store.checkKey(user.keySha256);
    if (!check.ok) return smtpReply('AUTH_REVOKED');
    return this.#limitReply(this.#limits.beforeMail(check.key), session);
  }

  /** RCPT TO: refused past the key's recipients per message, or its rate limits. The key is read
   *  again each time, so a limit changed by the operator applies to open sessions too. */
  #refuseRecipient(session: SMTPServerSession): SmtpReply | undefined {
    const user = session.user as SessionUser | undefined;
    const check = user && this.#deps.store.checkKey(user.keySha256);
    if (!check?.ok) return check && smtpReply('AUTH_REVOKED');
    return this.#limitReply(this.#limits.beforeRecipient(check.key, session.envelope.rcptTo.length), session);
  }

  #limitReply(refusal: LimitRefusal | undefined, session: SMTPServerSession): SmtpReply | undefined {
    if (!refusal) return undefined;
    this.#deps.metrics.limitRefusals.inc({ limit: refusal.limit });
    this.#session(session).log.info({ limit: refusal.limit, reply: refusal.reply.line }, 'sending limit reached');
    return refusal.reply;
  }

  #onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    callback: (error: Error | null | undefined, response?: { user: SessionUser }) => void,
  ): void {
    const { store, throttle, metrics, settings } = this.#deps;
    const address = session.remoteAddress;
    const blockedFor = throttle.blockedFor(address);
    if (blockedFor) {
      metrics.auth.inc({ result: 'throttled' });
      callback(smtpReply('AUTH_THROTTLED', { address, seconds: blockedFor }));
      return;
    }
    const userOk = settings.authUsers.some((name) => name.toLowerCase() === (auth.username ?? '').toLowerCase());
    const check = store.checkKey(sha256Hex(auth.password ?? ''));
    if (userOk && check.ok) {
      metrics.auth.inc({ result: 'ok' });
      callback(null, { user: { keyId: check.key.id, keySha256: check.key.sha256, namespace: check.key.namespace } });
      return;
    }
    const reason = userOk ? (check as { reason: string }).reason : 'bad_user';
    metrics.auth.inc({ result: reason });
    const delayMs = throttle.fail(address);
    this.#session(session).log.info({ method: auth.method, reason, keyId: check.ok ? undefined : check.key?.id, delayMs }, 'AUTH failed');
    setTimeout(() => callback(smtpReply('AUTH_FAILED')), delayMs).unref();
  }

  #releaseData(state: SessionState): void {
    this.#budget.release(state.reserved);
    state.reserved = 0;
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (error?: Error | null, message?: string) => void): void {
    const { settings, metrics } = this.#deps;
    const state = this.#session(session);
    const chunks: Buffer[] = [];
    let received = 0;
    let overBudget = false;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // Past SIZE, or past the relay-wide budget, nothing more is kept: memory is bounded by both, not by clients.
      if (overBudget || received > settings.maxMessageBytes || !this.#budget.tryReserve(chunk.length)) {
        overBudget ||= received <= settings.maxMessageBytes;
        chunks.length = 0;
        this.#releaseData(state);
        return;
      }
      state.reserved += chunk.length;
      chunks.push(chunk);
    });
    stream.once('end', () => {
      metrics.receivedBytes.inc(received);
      state.storing = true;
      const answer = (error: SmtpReply | undefined, transmissionId?: string) => {
        state.storing = false;
        this.#releaseData(state);
        const name = error ? error.reply : 'ACCEPTED';
        const accepted = `${REPLIES.ACCEPTED.enhanced} ${replyText('ACCEPTED', { transmission_id: transmissionId ?? '' })}`;
        metrics.replies.inc({ reply: name, code: REPLIES[name].code });
        this.#logTransaction(session, received, error ? error.line : `${REPLIES.ACCEPTED.code} ${accepted}`, transmissionId);
        if (error) callback(error);
        else callback(null, accepted);
      };
      if (stream.sizeExceeded || received > settings.maxMessageBytes) {
        answer(smtpReply('MESSAGE_TOO_BIG', { limit: settings.maxMessageBytes }));
        return;
      }
      if (overBudget) {
        state.log.warn({ received, budget: this.#budget.limit }, 'message data over the relay-wide budget; refused with 452');
        answer(smtpReply('RELAY_BUSY'));
        return;
      }
      const message = Buffer.concat(chunks, received);
      chunks.length = 0; // the parts are garbage from here, not kept until the reply
      this.#accept(message, session).then(
        (transmissionId) => answer(undefined, transmissionId),
        (error: Error) => answer(error instanceof SmtpReply ? error : this.#unexpected(error, session)),
      );
    });
  }

  /** Checks the message, produces it, and resolves with its transmission id once Kafka has it. */
  async #accept(received: Buffer, session: SMTPServerSession): Promise<string> {
    const { settings, store, queue, metrics } = this.#deps;
    const user = session.user as SessionUser;
    const checked = checkMessage(received, user.namespace, {
      store, sandboxDomain: settings.sandboxDomain, maxHeaderBytes: settings.maxHeaderBytes, maxAttrAddresses: settings.maxAttrAddresses,
    });
    const sandbox = settings.sandboxDomain !== '' && checked.sendingDomain === settings.sandboxDomain;
    const rcptTo = session.envelope.rcptTo.map((r) => r.address);
    const key = store.checkKey(user.keySha256);
    if (!key.ok) throw smtpReply('AUTH_REVOKED');
    let room: Reservation;
    try {
      room = this.#limits.take(key.key, user.namespace, recipients({ rcptTo, attributes: checked.attributes }).length, sandbox);
    } catch (error) {
      throw error instanceof LimitRefusal ? this.#limitReply(error, session)! : error;
    }
    const transmissionId = newTransmissionId();
    const submission: Submission = {
      transmissionId,
      namespace: user.namespace,
      apiKeyId: user.keyId,
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      rcptTo,
      sendingDomain: checked.sendingDomain,
      attributes: checked.attributes,
      receivedAt: new Date().toISOString(),
      clientAddress: session.remoteAddress,
      tls: this.#session(session).tls,
      ...(sandbox ? { sandbox: true as const } : {}),
    };
    try {
      await queue.send({ key: transmissionId, value: checked.raw, headers: submissionHeaders(submission) });
      room.commit();
    } catch (error) {
      room.release();
      if (error instanceof QueueUnavailableError || error instanceof StorageFullError) {
        this.#session(session).log.warn({ err: error, transmissionId }, 'message not queued');
        throw smtpReply(error instanceof StorageFullError ? 'STORAGE_FULL' : 'QUEUE_UNAVAILABLE');
      }
      throw error;
    }
    metrics.acceptedMessages.inc({ account: user.namespace });
    return transmissionId;
  }

  /** A fault of our own is an internal error, never blamed on the queue; the log has the stack. */
  #unexpected(error: Error, session: SMTPServerSession): SmtpReply {
    this.#session(session).log.error({ err: error }, 'internal error in DATA');
    return smtpReply('INTERNAL_ERROR', { session: session.id });
  }

  #logTransaction(session: SMTPServerSession, bytes: number, replyLine: string, transmissionId: string | undefined): void {
    const user = session.user as SessionUser | undefined;
    this.#session(session).log.info({
      keyId: user?.keyId,
      namespace: user?.namespace,
      transmissionId,
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
      recipients: session.envelope.rcptTo.length,
      bytes,
      tls: this.#session(session).tls,
      reply: replyLine,
    }, 'transaction');
  }
}
