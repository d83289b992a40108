// Parses and validates the X-MT-ATTR header against the shipped JSON Schema.
import { compileSchema, describeFirstError } from '../validation.ts';
import schema from './x-mt-attr.schema.json' with { type: 'json' };

export const X_MT_ATTR = 'x-mt-attr';
/** cc + bcc + archive together may name at most this many addresses. */
export const MAX_ATTR_ADDRESSES = 1000;

type AddressInput = string | { email: string; name?: string };

interface AttrInput {
  optionsAttributes?: { openTracking?: boolean; clickTracking?: boolean; transactional?: boolean };
  cc?: AddressInput[];
  bcc?: AddressInput[];
  archive?: AddressInput[];
  campaign_id?: string;
  tags?: string[];
  metadata?: Record<string, unknown>;
}

export interface Recipient {
  email: string;
  name?: string;
}

/** The attributes as the rest of the pipeline carries them (in the Kafka record's headers). */
export interface MessageAttributes {
  openTracking?: boolean;
  clickTracking?: boolean;
  transactional?: boolean;
  cc: Recipient[];
  bcc: Recipient[];
  archive: Recipient[];
  campaignId?: string;
  tags: string[];
  metadata: Record<string, unknown>;
}

export class AttributeError extends Error {
  readonly kind: 'json' | 'schema' | 'limit';
  constructor(kind: 'json' | 'schema' | 'limit', message: string) {
    super(message);
    this.name = 'AttributeError';
    this.kind = kind;
  }
}

const validate = compileSchema<AttrInput>(schema);

export const EMPTY_ATTRIBUTES: MessageAttributes = Object.freeze({ cc: [], bcc: [], archive: [], tags: [], metadata: {} });

function normalize(list: AddressInput[] | undefined): Recipient[] {
  return (list ?? []).map((a) => (typeof a === 'string' ? { email: a } : a.name ? { email: a.email, name: a.name } : { email: a.email }));
}

/** Parses an unfolded X-MT-ATTR value; throws AttributeError with a message fit for the SMTP reply. */
export function parseAttributes(value: string, maxAddresses = MAX_ATTR_ADDRESSES): MessageAttributes {
  let input: unknown;
  try {
    input = JSON.parse(value);
  } catch (error) {
    throw new AttributeError('json', (error as Error).message);
  }
  if (!validate(input)) {
    const detail = describeFirstError(validate.errors);
    throw new AttributeError('schema', detail.includes(':') ? detail : `value ${detail}`);
  }
  const attrs = input as AttrInput;
  const count = (attrs.cc?.length ?? 0) + (attrs.bcc?.length ?? 0) + (attrs.archive?.length ?? 0);
  if (count > maxAddresses) {
    throw new AttributeError('limit', `cc, bcc, archive: ${count} addresses exceed the limit of ${maxAddresses}`);
  }
  const options = attrs.optionsAttributes ?? {};
  return {
    ...(options.openTracking !== undefined ? { openTracking: options.openTracking } : {}),
    ...(options.clickTracking !== undefined ? { clickTracking: options.clickTracking } : {}),
    ...(options.transactional !== undefined ? { transactional: options.transactional } : {}),
    cc: normalize(attrs.cc),
    bcc: normalize(attrs.bcc),
    archive: normalize(attrs.archive),
    ...(attrs.campaign_id !== undefined ? { campaignId: attrs.campaign_id } : {}),
    tags: attrs.tags ?? [],
    metadata: attrs.metadata ?? {},
  };
}
