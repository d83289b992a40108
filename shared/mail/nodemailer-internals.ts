// nodemailer has no public API for the parts mtrelay uses: its SMTP client (the deliverer's
// outbound connections, their TLS socket, and the dot-stuffing stream it sends DATA through), its
// MIME tree builder (the deliverer's TLS reports) and its RFC 5322 address parser (the relay's
// From check). Their deep imports live in this file alone; package.json pins nodemailer's exact
// version, and test/shared/nodemailer-internals.test.ts fails loudly when an upgrade changes
// what mtrelay relies on.
import { TLSSocket } from 'node:tls';
import addressparser, { type Address } from 'nodemailer/lib/addressparser';
import MimeNode from 'nodemailer/lib/mime-node';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';

export { addressparser, DataStream, MimeNode, SMTPConnection, type Address };

/** The TLS socket of a connection after STARTTLS (its certificate chain is checked for DANE and MTA-STS); undefined while plaintext. */
export function tlsSocketOf(connection: SMTPConnection): TLSSocket | undefined {
  const socket = (connection as unknown as { _socket?: unknown })._socket;
  return socket instanceof TLSSocket ? socket : undefined;
}
