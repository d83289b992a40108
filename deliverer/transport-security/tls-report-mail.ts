// A TLS report as mail (RFC 8460 5.3): multipart/report with report-type "tlsrpt", a short
// text part, and the gzipped JSON report as application/tlsrpt+gzip; the subject and the
// TLS-Report-Domain and TLS-Report-Submitter fields name the domain, the submitter and the
// report. Built with nodemailer's MIME tree (boundaries, base64), signed and sent by the
// deliverer like any message of the From address's sending domain.
import { MimeNode } from '../../shared/mail/nodemailer-internals.ts';

export interface ReportMail {
  from: string;
  to: string;
  domain: string;
  submitter: string;
  reportId: string;
  /** The UTC day the report covers, YYYY-MM-DD. */
  day: string;
  gzippedReport: Buffer;
}

/** The message, CRLF line ends, ready for the deliverer. */
export async function tlsReportMessage(mail: ReportMail): Promise<Buffer> {
  const root = new MimeNode('multipart/report; report-type="tlsrpt"');
  root.setHeader({
    From: mail.from, To: mail.to, Date: new Date().toUTCString(),
    Subject: `Report Domain: ${mail.domain} Submitter: ${mail.submitter} Report-ID: <${mail.reportId}>`,
    'TLS-Report-Domain': mail.domain, 'TLS-Report-Submitter': mail.submitter,
    'Message-ID': `<${mail.reportId}>`,
  });
  root.createChild('text/plain; charset=utf-8')
    .setContent(`This is the aggregate TLS report of ${mail.submitter} for ${mail.domain}, ${mail.day} (UTC).\r\n`);
  const start = `${mail.day}T00:00:00Z`;
  const end = `${mail.day}T23:59:59Z`;
  // The file name RFC 8460 5.3 suggests: submitter!policy-domain!begin!end!unique-id.json.gz
  const name = `${mail.submitter}!${mail.domain}!${Date.parse(start) / 1000}!${Date.parse(end) / 1000}!${mail.reportId.split('@')[0]}.json.gz`;
  root.createChild('application/tlsrpt+gzip', { filename: name }).setHeader('Content-Disposition', `attachment; filename="${name}"`).setContent(mail.gzippedReport);
  const message = await root.build();
  // nodemailer writes field names its own way (Tls-Report-Domain); RFC 8460 5.3's spelling is kept.
  const headEnd = message.indexOf('\r\n\r\n');
  return Buffer.concat([Buffer.from(message.toString('latin1', 0, headEnd).replace(/^Tls-Report-/gm, 'TLS-Report-'), 'latin1'), message.subarray(headEnd)]);
}
