// Per-provider traffic rules: the big mailbox providers are recognised by their MX host names
// (one provider has many MX hosts and addresses, and hosts the mail of many domains), and
// their limits hold for all of them together. Shipped defaults cover Gmail, Yahoo (with AOL),
// Microsoft and Apple; a YAML file (`--shaping-rules`, the chart's deliverer.shaping.providers)
// changes their limits or adds providers.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { compileSchema, describeFirstError } from '../../shared/validation.ts';

export interface ProviderRule {
  name: string;
  /** MX host patterns: `*.google.com` is any name under google.com, at any depth. */
  mx: string[];
  /** Connections open at once to all of the provider's addresses, per deliverer process. */
  connections: number;
  messagesPerConnection: number;
  /** Messages per second to the provider, per deliverer process; 0 for no limit. */
  messagesPerSecond: number;
}

/** Limits the providers publish or are known to hold senders to, per deliverer process. */
export const DEFAULT_PROVIDER_RULES: ProviderRule[] = [
  { name: 'gmail', mx: ['*.google.com', '*.googlemail.com'], connections: 20, messagesPerConnection: 100, messagesPerSecond: 50 },
  { name: 'yahoo', mx: ['*.yahoodns.net'], connections: 10, messagesPerConnection: 20, messagesPerSecond: 20 },
  { name: 'microsoft', mx: ['*.protection.outlook.com'], connections: 10, messagesPerConnection: 50, messagesPerSecond: 20 },
  { name: 'apple', mx: ['*.mail.icloud.com'], connections: 5, messagesPerConnection: 50, messagesPerSecond: 10 },
];

type RuleChange = Partial<Omit<ProviderRule, 'name'>>;

const hostPattern = { type: 'string', pattern: '^(\\*\\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$' };
const validate = compileSchema<{ providers?: Record<string, RuleChange> }>({
  type: 'object', additionalProperties: false,
  properties: {
    providers: {
      type: 'object',
      propertyNames: { pattern: '^[a-z0-9][-a-z0-9]*$' },
      additionalProperties: {
        type: 'object', additionalProperties: false,
        properties: {
          mx: { type: 'array', minItems: 1, items: hostPattern },
          connections: { type: 'integer', minimum: 1 },
          messagesPerConnection: { type: 'integer', minimum: 1 },
          messagesPerSecond: { type: 'number', minimum: 0 },
        },
      },
    },
  },
});

/** The defaults with a file's changes: a known provider's fields replaced, a new provider added (its `mx` is required). */
export function providerRules(changes: Record<string, RuleChange> = {}, fallback: Omit<ProviderRule, 'name' | 'mx'>): ProviderRule[] {
  const rules = new Map(DEFAULT_PROVIDER_RULES.map((r) => [r.name, r]));
  for (const [name, change] of Object.entries(changes)) {
    const base = rules.get(name);
    if (!base && !change.mx) throw new Error(`provider "${name}" is not one of the defaults (${[...rules.keys()].join(', ')}): it needs mx patterns`);
    rules.set(name, { ...(base ?? { name, mx: [], ...fallback }), ...change });
  }
  return [...rules.values()];
}

/** Reads a rules file; a file that does not hold valid rules stops the deliverer with the reason. */
export function readProviderRules(file: string | undefined, fallback: Omit<ProviderRule, 'name' | 'mx'>): ProviderRule[] {
  if (!file) return providerRules({}, fallback);
  const document: unknown = parse(readFileSync(file, 'utf8')) ?? {};
  if (!validate(document)) throw new Error(`${file}: ${describeFirstError(validate.errors)}`);
  try {
    return providerRules(document.providers, fallback);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
}

/** The rule whose patterns match the MX host, the first one in order. */
export function ruleForHost(rules: ProviderRule[], host: string): ProviderRule | undefined {
  const name = host.toLowerCase().replace(/\.$/, '');
  return rules.find((rule) => rule.mx.some((pattern) => (pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) : name === pattern)));
}
