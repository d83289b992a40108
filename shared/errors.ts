// Errors that cross a module boundary carry a stable `code`, as undici's UND_ERR_* do, so
// callers, logs and tests tell them apart by code rather than by reading their messages.
// Every code is listed here once, with what it means.

export const ERROR_CODES = {
  MTR_ERR_SMTP_REPLY: 'a refusal for the SMTP client, carrying a reply of the catalogue (shared/smtp-replies.ts)',
  MTR_ERR_QUEUE_UNAVAILABLE: 'the queue (Kafka or the standalone SQLite queue) did not store a record',
  MTR_ERR_STORAGE_FULL: 'the standalone queue did not store a record: its file system is full',
  MTR_ERR_HEADER: 'a malformed RFC 5322 header block',
  MTR_ERR_ATTRIBUTES: 'X-MT-ATTR is not valid JSON, breaks its schema or names too many addresses',
  MTR_ERR_RECORD: 'a queue record this version cannot read (unknown schema, missing header)',
  MTR_ERR_CONFIG: 'resources that do not compile into a config document',
  MTR_ERR_CONFIG_PIECES: 'the config Secrets do not match their index yet (a write in progress)',
  MTR_ERR_KUBE_API: 'the Kubernetes API server refused a request',
  MTR_ERR_TOPICS: 'Kafka topics that mtrelay may not or cannot create, or whose settings would refuse messages',
  MTR_ERR_TRANSACTION: 'an outbound SMTP transaction ended without an answer per recipient',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MtrelayError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** True when `error` is an mtrelay error with this code. */
export function hasCode(error: unknown, code: ErrorCode): boolean {
  return error instanceof MtrelayError && error.code === code;
}
