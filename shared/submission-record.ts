// The record format of the submission queue (mtrelay.submissions in Kafka, a row in
// standalone mode): the raw RFC 5322 message as the value, the envelope and everything the
// deliverer needs in headers. `mtrelay-schema` versions it.
import type { MessageAttributes } from './attributes/x-mt-attr.ts';
import { MtrelayError } from './errors.ts';
import type { RecordHeaders } from './queue.ts';

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
  /** From the sandbox domain: signed with the key of the SendingDomain that claims it, whatever its namespace. */
  sandbox?: true;
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
  sandbox: 'mtrelay-sandbox',
} as const;

export function submissionHeaders(s: Submission): RecordHeaders {
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
    ...(s.sandbox ? { [HEADER.sandbox]: 'true' } : {}),
  };
}

/** A record this version cannot read: it goes to the dead letters, never silently away. */
export class RecordFormatError extends MtrelayError {
  constructor(message: string) {
    super('MTR_ERR_RECORD', message);
  }
}

function text(headers: RecordHeaders, name: string): string {
  const value = headers[name];
  if (value === undefined) throw new RecordFormatError(`submission record lacks header ${name}`);
  return value;
}

function json<T>(headers: RecordHeaders, name: string): T {
  try {
    return JSON.parse(text(headers, name)) as T;
  } catch (error) {
    if (error instanceof RecordFormatError) throw error;
    throw new RecordFormatError(`submission record header ${name} is not JSON`);
  }
}

/** Reads a record's headers back; throws RecordFormatError on a schema version this code does not know. */
export function readSubmission(headers: RecordHeaders): Submission {
  const version = text(headers, HEADER.schema);
  if (version !== SUBMISSION_SCHEMA_VERSION) throw new RecordFormatError(`unknown submission schema version ${version}`);
  return {
    transmissionId: text(headers, HEADER.transmissionId),
    namespace: text(headers, HEADER.namespace),
    apiKeyId: text(headers, HEADER.apiKeyId),
    mailFrom: text(headers, HEADER.mailFrom),
    rcptTo: json<string[]>(headers, HEADER.rcptTo),
    sendingDomain: text(headers, HEADER.sendingDomain),
    attributes: json<MessageAttributes>(headers, HEADER.attributes),
    receivedAt: text(headers, HEADER.receivedAt),
    clientAddress: text(headers, HEADER.clientAddress),
    tls: text(headers, HEADER.tls),
    ...(headers[HEADER.sandbox] === 'true' ? { sandbox: true as const } : {}),
  };
}
