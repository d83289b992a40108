// Feeds the dispatcher from Kafka: a consumer group over mtrelay.events, each event handed to
// the dispatcher, and a partition's offset committed only past events every webhook is done
// with. A failing webhook holds its events (and so the commit point) until they are delivered
// or dropped; another dispatcher taking over the partition posts them again (receivers de-duplicate
// by event_id and batch id).
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { InFlightGate, OffsetCommits } from '../shared/kafka/offset-commits.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { StoredEvent } from './sparkpost-shape.ts';

export interface KafkaEventsOptions {
  kafka: Kafka;
  topic: string;
  groupId: string;
  dispatcher: Dispatcher;
  /** Events held (waiting for a webhook) before the consumer waits. */
  maxInFlight: number;
  logger: Logger;
  onFatal: (error: Error) => never;
}

function parseEvent(value: Buffer | null): StoredEvent | undefined {
  try {
    const event = JSON.parse(value?.toString('utf8') ?? '') as Partial<StoredEvent>;
    return typeof event.type === 'string' && typeof event.namespace === 'string' && typeof event.event_id === 'string' ? event as StoredEvent : undefined;
  } catch {
    return undefined;
  }
}

export class KafkaEvents {
  readonly #o: KafkaEventsOptions;
  readonly #consumer: Consumer;
  readonly #commits: OffsetCommits;
  readonly #gate: InFlightGate;
  #stopping = false;
  #joined = false;

  constructor(options: KafkaEventsOptions) {
    this.#o = options;
    this.#consumer = options.kafka.consumer({ groupId: options.groupId, sessionTimeout: 10_000, minBytes: 64 * 1024, maxWaitTimeInMs: 200 });
    this.#commits = new OffsetCommits(this.#consumer, options.logger);
    this.#gate = new InFlightGate(() => this.#commits.tracker.inFlight >= options.maxInFlight);
  }

  /**
   * Every partition gets a committed position before the group first reads it: the end of the
   * topic, so a new install posts new events only, not the topic's whole retention. Reading then
   * starts from the beginning where no position is committed (a partition added later), so an
   * event is never skipped because no commit had happened yet on its partition.
   */
  async #commitStartingPositions(): Promise<void> {
    const admin = this.#o.kafka.admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId: this.#o.groupId, topics: [this.#o.topic] });
      const missing = (committed?.partitions ?? []).filter((p) => p.offset === '-1');
      if (!missing.length) return;
      const ends = new Map((await admin.fetchTopicOffsets(this.#o.topic)).map((e) => [e.partition, e.high]));
      await admin.setOffsets({ groupId: this.#o.groupId, topic: this.#o.topic, partitions: missing.map((p) => ({ partition: p.partition, offset: ends.get(p.partition) ?? '0' })) })
        // Another dispatcher of the group is running: it did this when it started.
        .catch((error: Error) => this.#o.logger.info({ err: error }, 'starting positions not set: the group is already running'));
    } finally {
      await admin.disconnect();
    }
  }

  async start(): Promise<void> {
    await this.#commitStartingPositions();
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [this.#o.topic], fromBeginning: true });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, ({ payload }) => {
      this.#joined = true;
      this.#o.logger.info({ memberAssignment: payload.memberAssignment }, 'dispatcher joined the consumer group');
    });
    this.#consumer.on(this.#consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.#o.onFatal(payload.error);
    });
    await this.#consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.#eachBatch(payload) });
    this.#commits.start(1000);
  }

  /** True once the group gave this consumer its partitions (events produced from then on reach it). */
  get joined(): boolean {
    return this.#joined;
  }

  async #eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.#stopping) return;
      const tracker = this.#commits.tracker;
      if (tracker.isStarted(topic, partition, message.offset)) {
        resolveOffset(message.offset);
        continue;
      }
      await this.#gate.wait(heartbeat);
      if (!isRunning() || isStale() || this.#stopping) return;
      tracker.start(topic, partition, message.offset);
      resolveOffset(message.offset);
      const finish = () => {
        tracker.finish(topic, partition, message.offset);
        this.#gate.wake();
      };
      const event = parseEvent(message.value);
      if (!event) {
        this.#o.logger.warn({ topic, partition, offset: message.offset }, 'skipped a record that is not an event');
        finish();
        continue;
      }
      this.#o.dispatcher.dispatch(event, finish);
    }
    await heartbeat();
  }

  /** Drain: take no more events, let posts in progress end, commit what is done, leave the group. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#gate.stop();
    this.#consumer.pause([{ topic: this.#o.topic }]);
    await this.#o.dispatcher.idle();
    await this.#commits.stop();
    this.#o.dispatcher.stop();
    await this.#consumer.disconnect();
  }
}
