// The SMTP server of `mtrelay inbound` (and of standalone's inbound listener): the MX of the
// bounce domains. It takes mail only for their return paths, feedback addresses and (with the
// tracking keys) the unsubscribe address, never
// relays, asks for no AUTH, offers STARTTLS when it has a certificate, and answers 250 only
// once what a report says (events, suppressions) is stored by the `store` it was given.
import '../relay/smtp-server-patches.ts';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { SuppressionEntry } from '../deliverer/suppression-list.ts';
import { parseReportAddress, type ReportAddress } from '../shared/mail/verp.ts';
import { REPLIES, SmtpReply, replyText, smtpReply } from '../shared/smtp-replies.ts';
import { TLS_OPTIONS, type TlsMaterial } from '../relay/tls-files.ts';
import type { InboundMetrics } from './metrics.ts';
import { domainLabel } from '../shared/ops/domain-label.ts';
import { reportOutcome, type ReportOutcome } from './report-events.ts';
import { mailUnsubscribeOutcome } from './unsubscribe-mail.ts';
import type { TrackingKeyRing } from '../shared/tracking/tokens.ts';
import { parseReport, type ParsedReport } from './report-parser.ts';

/** Where a report's events and suppressions go: Kafka topics, or standalone's SQLite queue. Resolves once they are durable. */
export type ReportStore = (events: ReportOutcome['events'], suppressions: SuppressionEntry[]) => Promise<void>;

export interface InboundServerOptions {
  hostname: string;
  bounceDomains: string[];
  /** Largest report taken, in bytes. */
  maxMessageBytes: number;
  tls?: TlsMaterial;
  store: ReportStore;
  /** The tracking keys unsubscribe tokens verify with; without them unsubscribe@ is not an address of ours. */
  trackingKeys?: () => TrackingKeyRing;
  metrics: InboundMetrics;
  logger: Logger;
}

/** The report addresses of one transaction, by the order of RCPT TO. */
const recipientsOf = new WeakMap<SMTPServerSession, { address: string; report: ReportAddress }[]>();

export class InboundServer {
  readonly #o: InboundServerOptions;
  /** Sending domains seen as complaint label values (see domainLabel). */
  readonly #domains = new Set<string>();
  readonly #server: SMTPServer;

  constructor(options: InboundServerOptions) {
    this.#o = options;
    const serverOptions: SMTPServerOptions = {
      name: options.hostname,
      banner: 'mtrelay inbound',
      hideENHANCEDSTATUSCODES: false,
      authOptional: true,
      disabledCommands: options.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      ...(options.tls ? { ...options.tls, ...TLS_OPTIONS } : {}),
      size: options.maxMessageBytes,
      disableReverseLookup: true,
      hideDSN: true,
      logger: false,
      onConnect: (_session, callback) => {
        options.metrics.connections.inc();
        callback();
      },
      // Any sender: reports come from the null sender <> and from daemons' own addresses.
      onMailFrom: (_address, session, callback) => {
        recipientsOf.set(session, []);
        callback();
      },
      onRcptTo: (address, session, callback) => {
        const report = parseReportAddress(address.address, options.bounceDomains);
        if (!report || (report.kind === 'unsubscribe' && !options.trackingKeys)) {
          options.metrics.refused.inc({ reason: 'not_ours' });
          callback(smtpReply('INBOUND_NOT_OURS', { address: address.address }));
          return;
        }
        recipientsOf.get(session)?.push({ address: address.address, report });
        callback();
      },
      onData: (stream, session, callback) => this.#onData(stream, session, callback),
    };
    this.#server = new SMTPServer(serverOptions);
    this.#server.on('error', (error) => options.logger.warn({ err: error }, 'inbound SMTP connection error'));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve((this.#server.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops accepting; transactions in DATA finish and are answered. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (error?: Error | null, message?: string) => void): void {
    const { maxMessageBytes, metrics } = this.#o;
    const chunks: Buffer[] = [];
    let received = 0;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxMessageBytes) chunks.length = 0; // past the limit nothing is kept
      else chunks.push(chunk);
    });
    stream.once('end', () => {
      if (stream.sizeExceeded || received > maxMessageBytes) {
        metrics.refused.inc({ reason: 'too_big' });
        callback(smtpReply('INBOUND_TOO_BIG', { limit: maxMessageBytes }));
        return;
      }
      this.#handle(Buffer.concat(chunks, received), recipientsOf.get(session) ?? [], session.remoteAddress).then(
        (results) => callback(null, `${REPLIES.INBOUND_ACCEPTED.enhanced} ${replyText('INBOUND_ACCEPTED', { result: [...new Set(results)].join(', ') })}`),
        (error: Error) => callback(error instanceof SmtpReply ? error : smtpReply('INBOUND_NOT_STORED', { detail: error.message })),
      );
    });
  }

  /** Parses the report once, matches it for each of its recipients, and stores what it says. */
  async #handle(message: Buffer, recipients: { address: string; report: ReportAddress }[], remoteAddress: string): Promise<string[]> {
    const { metrics, logger, store } = this.#o;
    // A report that cannot be read is taken and counted, not refused: a retry would not read better.
    // Mail only to the unsubscribe address is no report: only its subject is read.
    const report: ParsedReport = recipients.every((r) => r.report.kind === 'unsubscribe')
      ? { kind: 'other', why: 'an unsubscribe request', original: {} }
      : await parseReport(message).catch((error: Error) => ({ kind: 'other' as const, why: `unreadable: ${error.message}`, original: {} }));
    const outcomes: ReportOutcome[] = recipients.map((r) => (r.report.kind === 'unsubscribe'
      ? mailUnsubscribeOutcome(message, this.#o.trackingKeys!(), remoteAddress)
      : reportOutcome(report, r.report, r.address)));
    const events = outcomes.flatMap((o) => o.events);
    const suppressions = outcomes.flatMap((o) => o.suppressions);
    if (events.length || suppressions.length) await store(events, suppressions);
    for (const [i, o] of outcomes.entries()) {
      metrics.reports.inc({ kind: report.kind, result: o.result });
      const level = o.result === 'unmatched' ? 'warn' : 'info';
      logger[level]({ to: recipients[i]!.address, kind: report.kind, result: o.result, detail: o.detail, events: o.events.map((e) => e.event_id) }, `inbound report: ${o.result}`);
    }
    for (const e of events) {
      metrics.events.inc({ type: e.type });
      if (e.type === 'spam_complaint') metrics.complaints.inc({ account: e.namespace, sending_domain: domainLabel(this.#domains, e.sending_domain) });
    }
    metrics.suppressions.inc(suppressions.length);
    return outcomes.map((o) => o.result);
  }
}
