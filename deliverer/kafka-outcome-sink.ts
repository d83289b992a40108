// The Kafka runtime's outcome sink: an attempt's retry record, suppressions and events, all
// acks=all, retried while the broker may still take them. Events travel with those of other
// records finishing at the same time (EventBatcher). A partial write followed by a
// redelivery repeats events, never loses outcomes.
import type { CompressionTypes, IHeaders, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { topicNames } from '../shared/kafka/topics.ts';
import type { QueueRecord } from '../shared/queue.ts';
import type { DurableOutcome, OutcomeSink } from './delivery-core.ts';
import { EventBatcher } from '../shared/kafka/event-batcher.ts';
import { suppressionRecord } from './suppression-list.ts';

/** Events per produce request stay well under the broker's default 1 MB record batch limit. */
const EVENT_REQUEST_BYTES = 512 * 1024;

/** A record of the consumer group, with where it came from. */
export interface KafkaJob {
  topic: string;
  partition: number;
  offset: string;
  record: QueueRecord;
  /** The key and headers exactly as consumed, so a dead letter keeps them byte for byte. */
  original: { key: Buffer | null; headers: IHeaders | undefined };
}

export class KafkaOutcomeSink implements OutcomeSink<KafkaJob> {
  readonly #producer: Producer;
  readonly #topics: ReturnType<typeof topicNames>;
  readonly #prefix: string;
  readonly #compression: CompressionTypes;
  readonly #logger: Logger;
  readonly #events: EventBatcher;

  constructor(options: { producer: Producer; prefix: string; topics: ReturnType<typeof topicNames>; logger: Logger; compression: CompressionTypes }) {
    this.#compression = options.compression;
    this.#producer = options.producer;
    this.#prefix = options.prefix;
    this.#topics = options.topics;
    this.#logger = options.logger;
    this.#events = new EventBatcher(this.#producer, this.#topics.events, { lingerMs: 5, maxBytes: EVENT_REQUEST_BYTES });
  }

  commit(_job: KafkaJob, outcome: DurableOutcome): Promise<void> {
    return this.#durably(() => this.#write(outcome));
  }

  deadLetter(job: KafkaJob, reason: string): Promise<void> {
    const { original, record } = job;
    return this.#durably(() => this.#producer.send({ topic: this.#topics.deadLetter, acks: -1, messages: [{
      key: original.key, value: record.value,
      headers: { ...original.headers, 'mtrelay-dead-letter-reason': reason, 'mtrelay-dead-letter-topic': job.topic, 'mtrelay-dead-letter-offset': `${job.partition}/${job.offset}` },
    }] }).then(() => undefined));
  }

  locate(job: KafkaJob): Record<string, unknown> {
    return { topic: job.topic, partition: job.partition, offset: job.offset };
  }

  async #write(outcome: DurableOutcome): Promise<void> {
    if (outcome.retry) {
      const { record, rung } = outcome.retry;
      await this.#producer.send({ topic: `${this.#prefix}.retry.${rung}`, acks: -1, compression: this.#compression, messages: [record] });
    }
    if (outcome.suppressions.length) {
      await this.#producer.send({ topic: this.#topics.suppressions, acks: -1,
        messages: outcome.suppressions.map(suppressionRecord) });
    }
    // Bounded requests: a thousand recipients' events at once would exceed the broker's limit.
    let chunk: { key: string; value: string }[] = [];
    let bytes = 0;
    const sends: Promise<void>[] = [];
    for (const event of outcome.events) {
      const value = JSON.stringify(event);
      if (bytes + value.length > EVENT_REQUEST_BYTES) {
        sends.push(this.#events.send(chunk));
        chunk = [];
        bytes = 0;
      }
      chunk.push({ key: event.transmission_id, value });
      bytes += value.length;
    }
    if (chunk.length) sends.push(this.#events.send(chunk));
    await Promise.all(sends);
  }

  /**
   * Outcomes must become durable before the offset moves: retry while the broker may still
   * take them. An error the broker will always give (a record too large, say) is thrown.
   */
  async #durably(write: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await write();
        return;
      } catch (error) {
        if ((error as { retriable?: boolean }).retriable === false) throw error;
        this.#logger.warn({ err: error, attempt }, 'writing to Kafka failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt)));
      }
    }
  }
}
