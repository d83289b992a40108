// The record format of mtrelay.submissions: the raw RFC 5322 message as the value, the
// envelope and everything the deliverer needs in headers. `mtrelay-schema` versions it.
import type { IHeaders } from 'kafkajs';
import type { MessageAttributes } from '../attributes/x-mt-attr.ts';

export const SUBMISSION_SCHEMA_VERSION = '1';

export interface Submission {
  transmissionId: string;
  namespace: string;
  /** `namespace/name` of the ApiKey that authenticated. */
  apiKeyId: string;
  mailFrom: string;
  rcptTo: string[];
  sendingDomain: string;
  attributes: MessageAttributes;
  receivedAt: string;
  clientAddress: string;
  /** TLS protocol of the submission, or "none". */
  tls: string;
}

export const HEADER = {
  schema: 'mtrelay-schema',
  transmissionId: 'mtrelay-transmission-id',
  namespace: 'mtrelay-namespace',
  apiKeyId: 'mtrelay-api-key-id',
  mailFrom: 'mtrelay-mail-from',
  rcptTo: 'mtrelay-rcpt-to',
  sendingDomain: 'mtrelay-sending-domain',
  attributes: 'mtrelay-attributes',
  receivedAt: 'mtrelay-received-at',
  clientAddress: 'mtrelay-client-address',
  tls: 'mtrelay-tls',
} as const;

export function submissionHeaders(s: Submission): IHeaders {
  return {
    [HEADER.schema]: SUBMISSION_SCHEMA_VERSION,
    [HEADER.transmissionId]: s.transmissionId,
    [HEADER.namespace]: s.namespace,
    [HEADER.apiKeyId]: s.apiKeyId,
    [HEADER.mailFrom]: s.mailFrom,
    [HEADER.rcptTo]: JSON.stringify(s.rcptTo),
    [HEADER.sendingDomain]: s.sendingDomain,
    [HEADER.attributes]: JSON.stringify(s.attributes),
    [HEADER.receivedAt]: s.receivedAt,
    [HEADER.clientAddress]: s.clientAddress,
    [HEADER.tls]: s.tls,
  };
}

function text(headers: IHeaders | undefined, name: string): string {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) throw new Error(`submission record lacks header ${name}`);
  return Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
}

/** Reads a record's headers back; throws on a schema version this code does not know. */
export function readSubmission(headers: IHeaders | undefined): Submission {
  const version = text(headers, HEADER.schema);
  if (version !== SUBMISSION_SCHEMA_VERSION) throw new Error(`unknown submission schema version ${version}`);
  return {
    transmissionId: text(headers, HEADER.transmissionId),
    namespace: text(headers, HEADER.namespace),
    apiKeyId: text(headers, HEADER.apiKeyId),
    mailFrom: text(headers, HEADER.mailFrom),
    rcptTo: JSON.parse(text(headers, HEADER.rcptTo)) as string[],
    sendingDomain: text(headers, HEADER.sendingDomain),
    attributes: JSON.parse(text(headers, HEADER.attributes)) as MessageAttributes,
    receivedAt: text(headers, HEADER.receivedAt),
    clientAddress: text(headers, HEADER.clientAddress),
    tls: text(headers, HEADER.tls),
  };
}
