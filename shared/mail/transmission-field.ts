// X-MT-Transmission: the field every delivered copy carries, naming its transmission and its
// account (namespace): "X-MT-Transmission: 123456789; namespace=acme". Bounces that return the
// original headers and complaints (ARF reports carry the original message) are matched to the
// transmission and the account by it; the deliverer removes a client's own field of that name.

export const TRANSMISSION_FIELD_NAME = 'x-mt-transmission';

export function transmissionField(transmissionId: string, namespace: string): string {
  return `X-MT-Transmission: ${transmissionId}; namespace=${namespace}`;
}

/** The transmission and namespace of a field's value; undefined when it is not one of ours. */
export function parseTransmissionField(value: string): { transmissionId: string; namespace: string } | undefined {
  const match = /^\s*(\d{1,20})\s*;\s*namespace=([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\s*$/i.exec(value);
  return match ? { transmissionId: match[1]!, namespace: match[2]!.toLowerCase() } : undefined;
}
