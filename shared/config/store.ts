// Holds the config in force. A new config replaces the old one in a single assignment,
// so every lookup sees either the old or the new document, never a mix.
import { EventEmitter } from 'node:events';
import { SMTP_SEND, type CompiledApiKey, type CompiledConfig, type CompiledDomain } from './types.ts';

export interface LoadedConfig {
  readonly document: CompiledConfig;
  /** Increases by one with every config that is put in force in this process. */
  readonly generation: number;
  readonly loadedAt: Date;
  readonly keysBySha256: ReadonlyMap<string, CompiledApiKey>;
}

export type KeyCheck =
  | { ok: true; key: CompiledApiKey }
  | { ok: false; reason: 'unknown_key' | 'disabled' | 'expired' | 'no_permission'; key?: CompiledApiKey };

export class ConfigStore extends EventEmitter<{ change: [LoadedConfig] }> {
  #current: LoadedConfig | undefined;

  get current(): LoadedConfig | undefined {
    return this.#current;
  }

  get loaded(): boolean {
    return this.#current !== undefined;
  }

  /** Puts a document in force; returns false when it is the revision already in force. */
  apply(document: CompiledConfig): boolean {
    if (this.#current?.document.revision === document.revision) return false;
    this.#current = {
      document,
      generation: (this.#current?.generation ?? 0) + 1,
      loadedAt: new Date(),
      keysBySha256: new Map(document.apiKeys.map((k) => [k.sha256, k])),
    };
    this.emit('change', this.#current);
    return true;
  }

  /** Checks an API key (by its SHA-256) for a permission at a given time. */
  checkKey(sha256: string, permission = SMTP_SEND, now = new Date()): KeyCheck {
    const key = this.#current?.keysBySha256.get(sha256);
    if (!key) return { ok: false, reason: 'unknown_key' };
    if (key.disabled) return { ok: false, reason: 'disabled', key };
    if (key.expiresAt && Date.parse(key.expiresAt) <= now.getTime()) return { ok: false, reason: 'expired', key };
    if (!key.permissions.includes(permission)) return { ok: false, reason: 'no_permission', key };
    return { ok: true, key };
  }

  sendingDomain(namespace: string, domain: string): CompiledDomain | undefined {
    return this.#current?.document.namespaces[namespace]?.domains[domain];
  }

  /** The SendingDomain of any namespace that claims `domain` (a domain has at most one): how the sandbox domain is found. */
  claimedDomain(domain: string): CompiledDomain | undefined {
    const namespaces = Object.values(this.#current?.document.namespaces ?? {});
    return namespaces.find((n) => n.domains[domain])?.domains[domain];
  }

  /** The namespace whose SendingDomain claims `domain`. */
  claimingNamespace(domain: string): string | undefined {
    return Object.entries(this.#current?.document.namespaces ?? {}).find(([, n]) => n.domains[domain])?.[0];
  }
}
