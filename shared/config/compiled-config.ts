// The compiled config document as pods receive it: its schema check (a document read from
// Secrets is checked before it is put in force) and the relay's view of it.
import { ajv } from '../validation.ts';
import compiledConfigSchema from './schemas/compiled-config.schema.json' with { type: 'json' };
import type { CompiledConfig } from './types.ts';

export const validateCompiledConfig = ajv.compile<CompiledConfig>(compiledConfigSchema);

/** The relay faces the internet: its config holds no private keys and no webhook credentials. */
export function relayView(config: CompiledConfig): CompiledConfig {
  const namespaces = Object.fromEntries(Object.entries(config.namespaces).map(([ns, { domains }]) => [ns, {
    domains: Object.fromEntries(Object.entries(domains).map(([name, { dkimPrivateKey: _secret, ...rest }]) => [name, rest])),
  }]));
  return { ...config, namespaces };
}
