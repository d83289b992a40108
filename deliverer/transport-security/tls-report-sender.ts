// Daily TLS reports (RFC 8460 3, 5): after each UTC day, every domain the deliverer sent to
// that publishes `_smtp._tls.<domain>` TXT "v=TLSRPTv1; rua=…" gets the day's report, gzipped
// JSON POSTed to each https: address and mailed to each mailto: address (from a sending domain
// of the operator's, DKIM-signed). Reports are per deliverer process (each has its own
// report-id; receivers add them up, RFC 8460 3); a process that restarts loses its current
// day's counts, which its metrics keep.
import https from 'node:https';
import { gzipSync } from 'node:zlib';
import type { Resolver } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { DestinationPolicy } from '../destination-policy.ts';
import { utcDay, type TlsReports } from './tls-report.ts';
import { tlsReportMessage } from './tls-report-mail.ts';
import { permittedAddress } from './permitted-address.ts';

export interface TlsReportSubmitter {
  /** The organisation named in reports (RFC 8460 4.4 organization-name). */
  organization: string;
  /** Where a receiver reaches the sender's operators (contact-info). */
  contact: string;
  /** This process, in report ids: `<day>.<domain>.<instance>@<organization>`. */
  instance: string;
}

/** How mailed reports go out: from this address, through the deliverer (which signs them with the From domain's key). */
export interface ReportMailer {
  from: string;
  deliver(to: string, message: Buffer): Promise<void>;
}

/** The reporting addresses a domain publishes; none when it publishes no valid record. */
export async function reportingAddresses(resolver: Resolver, domain: string): Promise<string[]> {
  const records = await resolver.resolveTxt(`_smtp._tls.${domain}`).catch(() => [] as string[][]);
  const valid = records.map((parts) => parts.join('')).filter((r) => /^v=TLSRPTv1\s*;/.test(r));
  // RFC 8460 3: more than one record means no reports.
  if (valid.length !== 1) return [];
  const rua = /(?:^|;)\s*rua\s*=\s*([^;]+)/.exec(valid[0]!)?.[1] ?? '';
  return rua.split(',').map((uri) => uri.trim()).filter(Boolean);
}

export class TlsReportSender {
  readonly #reports: TlsReports;
  readonly #resolver: Resolver;
  readonly #destinations: DestinationPolicy;
  readonly #ca: (string | Buffer)[];
  readonly #submitter: TlsReportSubmitter;
  readonly #logger: Logger;
  readonly #mailer?: ReportMailer;
  #timer?: NodeJS.Timeout;

  /** `ca`: the CAs trusted for the receivers' certificates (the system's and --tls-ca). */
  constructor(options: { reports: TlsReports; resolver: Resolver; destinations: DestinationPolicy; ca: (string | Buffer)[]; submitter: TlsReportSubmitter; logger: Logger; mailer?: ReportMailer }) {
    this.#reports = options.reports;
    this.#resolver = options.resolver;
    this.#destinations = options.destinations;
    this.#ca = options.ca;
    this.#submitter = options.submitter;
    this.#logger = options.logger;
    if (options.mailer) this.#mailer = options.mailer;
  }

  /** Sends each finished day's reports, checking every ten minutes. */
  start(): void {
    const tick = () => {
      const yesterday = utcDay(Date.now() - 86_400_000);
      if (this.#reports.domains(yesterday).length) void this.send(yesterday);
    };
    this.#timer = setInterval(tick, 10 * 60_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Sends one day's reports to every domain that asks for them; returns the addresses sent to. */
  async send(day: string): Promise<string[]> {
    const sent: string[] = [];
    const reports = this.#reports.domains(day).map((domain) => {
      const reportId = `${day}.${domain}.${this.#submitter.instance}@${this.#submitter.organization}`;
      return { domain, reportId, report: this.#reports.report(day, domain, { organization: this.#submitter.organization, contact: this.#submitter.contact, reportId }) };
    });
    // Once read, the day is gone: a receiver that is down misses it rather than getting it twice.
    this.#reports.forget(day);
    for (const { domain, reportId, report } of reports) {
      const addresses = await reportingAddresses(this.#resolver, domain);
      if (!addresses.length || !report) continue;
      const body = gzipSync(JSON.stringify(report));
      for (const address of addresses) {
        const mailto = /^mailto:([^?]+)/i.exec(address)?.[1];
        if (!address.startsWith('https://') && !mailto) {
          this.#logger.info({ domain, address }, 'TLS report not sent: not an https: or mailto: address');
          continue;
        }
        if (mailto && !this.#mailer) {
          this.#logger.info({ domain, address }, 'TLS report not mailed: no --tls-report-from');
          continue;
        }
        try {
          if (mailto) {
            const message = await tlsReportMessage({ from: this.#mailer!.from, to: decodeURIComponent(mailto), domain, submitter: this.#submitter.organization, reportId, day, gzippedReport: body });
            await this.#mailer!.deliver(decodeURIComponent(mailto), message);
          } else {
            await this.#post(new URL(address), body, domain);
          }
          sent.push(address);
          this.#logger.info({ domain, address, reportId }, 'TLS report sent');
        } catch (error) {
          this.#logger.warn({ domain, address, err: error }, 'TLS report not sent');
        }
      }
    }
    return sent;
  }

  /** POSTs to a receiver's address, refusing addresses the destination policy refuses (the URL is the domain's choice). */
  async #post(url: URL, body: Buffer, domain: string): Promise<void> {
    const address = await permittedAddress(this.#resolver, this.#destinations, url.hostname);
    await new Promise<void>((resolve, reject) => {
      const request = https.request({
        method: 'POST', host: address, port: url.port || 443, path: `${url.pathname}${url.search}`, servername: url.hostname,
        headers: { host: url.host, 'content-type': 'application/tlsrpt+gzip', 'content-length': body.length, 'tls-report-domain': domain, 'tls-report-submitter': this.#submitter.organization },
        ca: this.#ca, rejectUnauthorized: true, minVersion: 'TLSv1.2', timeout: 30_000, agent: false,
      }, (response) => {
        response.resume();
        if (response.statusCode && response.statusCode >= 200 && response.statusCode < 300) resolve();
        else reject(new Error(`HTTP ${response.statusCode}`));
      });
      request.on('timeout', () => request.destroy(new Error('timed out')));
      request.on('error', reject);
      request.end(body);
    });
  }
}
