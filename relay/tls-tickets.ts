// TLS session tickets, so that a client's next connection resumes its TLS session instead of
// a full handshake: the common case of applications that open a connection per message. A
// ticket is encrypted with the ticket key, so every relay replica needs the same key for a
// client to resume on whichever pod the load balancer picks. The operator puts one in the
// relay's config and rotates it; a relay without it (a folder of manifests, standalone) makes
// its own and rotates it itself. Node.js keeps one key: a ticket from before a rotation makes a
// full handshake, nothing worse.
import type { Logger } from 'pino';
import { TICKET_KEY_BYTES, newTicketKey } from '../shared/config/compiled-config.ts';

/** How long a ticket may be used to resume (the ticket lifetime the relay announces). */
export const SESSION_LIFETIME_SECONDS = 3600;
/** How often a key is replaced: by the operator for the shared key, by the relay for its own. */
export const DEFAULT_TICKET_KEY_ROTATION_MS = 12 * 60 * 60 * 1000;

export class TicketKeys {
  #current = newTicketKey();
  #shared: string | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #listeners: ((key: Buffer) => void)[] = [];
  readonly #logger: Logger;

  constructor(logger: Logger, rotationMs = DEFAULT_TICKET_KEY_ROTATION_MS) {
    this.#logger = logger;
    this.#timer = setInterval(() => {
      if (this.#shared === undefined) this.#set(newTicketKey());
    }, rotationMs).unref();
  }

  get current(): Buffer {
    return this.#current;
  }

  onChange(listener: (key: Buffer) => void): void {
    this.#listeners.push(listener);
  }

  /** The key every replica shares (base64, from the config); from then on this process no longer rotates its own. */
  useShared(base64: string): void {
    if (base64 === this.#shared) return;
    const key = Buffer.from(base64, 'base64');
    if (key.length !== TICKET_KEY_BYTES) {
      this.#logger.warn({ bytes: key.length }, `the config's TLS ticket key is not ${TICKET_KEY_BYTES} bytes; keeping the current one`);
      return;
    }
    this.#shared = base64;
    this.#set(key);
    this.#logger.info('TLS ticket key from the config in use');
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #set(key: Buffer): void {
    this.#current = key;
    for (const listener of this.#listeners) listener(key);
  }
}
