// Parses and validates the X-MT-ATTR header against the shipped JSON Schema.
import { refusal } from '../smtp-replies.ts';
import { compileSchema, errorField, errorProblem, firstError } from '../validation.ts';
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


const validate = compileSchema<AttrInput>(schema);

export const EMPTY_ATTRIBUTES: MessageAttributes = Object.freeze({ cc: [], bcc: [], archive: [], tags: [], metadata: {} });

function normalize(list: AddressInput[] | undefined): Recipient[] {
  return (list ?? []).map((a) => (typeof a === 'string' ? { email: a } : a.name ? { email: a.email, name: a.name } : { email: a.email }));
}

/** Parses an unfolded X-MT-ATTR value; throws a RefusalError (MTR_ERR_ATTRIBUTES) naming the reply a client gets. */
export function parseAttributes(value: string, maxAddresses = MAX_ATTR_ADDRESSES): MessageAttributes {
  let input: unknown;
  try {
    input = JSON.parse(value);
  } catch (error) {
    throw refusal('MTR_ERR_ATTRIBUTES', 'ATTR_JSON', { detail: (error as Error).message });
  }
  if (!validate(input)) {
    const error = firstError(validate.errors);
    throw refusal('MTR_ERR_ATTRIBUTES', 'ATTR_SCHEMA', { field: (error && errorField(error)) || 'value', problem: error ? errorProblem(error) : 'is invalid' });
  }
  const attrs = input as AttrInput;
  const count = (attrs.cc?.length ?? 0) + (attrs.bcc?.length ?? 0) + (attrs.archive?.length ?? 0);
  if (count > maxAddresses) {
    throw refusal('MTR_ERR_ATTRIBUTES', 'ATTR_TOO_MANY_ADDRESSES', { count, limit: maxAddresses });
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
