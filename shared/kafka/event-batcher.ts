// Events of many records in few produce requests. Each finished record used to send its
// own request of ~1 KB; gathering for a few milliseconds halves the deliverer's and the
// broker's CPU per message. A caller's promise settles with the request that carried its
// events, so a record is still finished only once its events are acknowledged.
import type { Message, Producer } from 'kafkajs';

interface Waiting {
  messages: Message[];
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class EventBatcher {
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #lingerMs: number;
  readonly #maxBytes: number;
  #waiting: Waiting[] = [];
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(producer: Producer, topic: string, options: { lingerMs: number; maxBytes: number }) {
    this.#producer = producer;
    this.#topic = topic;
    this.#lingerMs = options.lingerMs;
    this.#maxBytes = options.maxBytes;
  }

  /** Resolves once the broker acknowledged (acks=all) the request holding these events. */
  send(messages: Message[]): Promise<void> {
    const bytes = messages.reduce((n, m) => n + (m.value?.length ?? 0), 0);
    return new Promise((resolve, reject) => {
      if (this.#bytes + bytes > this.#maxBytes) this.#flush();
      this.#waiting.push({ messages, bytes, resolve, reject });
      this.#bytes += bytes;
      this.#timer ??= setTimeout(() => this.#flush(), this.#lingerMs);
    });
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#waiting;
    this.#waiting = [];
    this.#bytes = 0;
    if (!batch.length) return;
    this.#producer.send({ topic: this.#topic, acks: -1, messages: batch.flatMap((w) => w.messages) }).then(
      () => { for (const w of batch) w.resolve(); },
      (error: Error) => { for (const w of batch) w.reject(error); },
    );
  }
}
