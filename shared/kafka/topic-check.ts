// Topics that exist with settings that would refuse or endanger messages are found at start,
// not later as 451 replies: a max.message.bytes below what SIZE needs, a suppressions topic that
// is not compacted (entries would expire), too few partitions, no min.insync.replicas where
// three replicas allow it. Each problem says how to fix it.
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { requiredMaxMessageBytes, topicNames, type TopicLayout } from './topics.ts';

const { ConfigResourceTypes } = kafkajs; // CommonJS: not every export is a named ESM export

export interface TopicProblem {
  topic: string;
  /** `fatal`: messages would be refused or records lost, the role is not ready; `warning`: logged. */
  severity: 'fatal' | 'warning';
  problem: string;
}

const alter = (topic: string, setting: string) => `kafka-configs.sh --alter --entity-type topics --entity-name ${topic} --add-config ${setting}`;

export async function checkTopics(admin: Admin, layout: TopicLayout): Promise<TopicProblem[]> {
  const names = topicNames(layout.prefix, layout.retryDelays);
  const messageTopics = [names.submissions, ...names.retries, names.deadLetter];
  const all = [...messageTopics, names.events, names.suppressions];
  const [metadata, configs] = await Promise.all([
    admin.fetchTopicMetadata({ topics: all }),
    admin.describeConfigs({ includeSynonyms: false, resources: all.map((name) => ({
      type: ConfigResourceTypes.TOPIC, name, configNames: ['max.message.bytes', 'cleanup.policy', 'min.insync.replicas'],
    })) }),
  ]);
  const setting = (topic: string, name: string) =>
    configs.resources.find((r) => r.resourceName === topic)?.configEntries.find((e) => e.configName === name)?.configValue;
  const problems: TopicProblem[] = [];
  const needed = requiredMaxMessageBytes(layout);
  for (const topic of messageTopics) {
    const max = Number(setting(topic, 'max.message.bytes'));
    if (max < needed) {
      problems.push({ topic, severity: 'fatal', problem: `max.message.bytes is ${max}, below the ${needed} that SIZE ${layout.maxMessageBytes} needs (messages near SIZE would get 451); raise it: ${alter(topic, `max.message.bytes=${needed}`)}` });
    }
  }
  if (!(setting(names.suppressions, 'cleanup.policy') ?? '').split(',').includes('compact')) {
    problems.push({ topic: names.suppressions, severity: 'fatal', problem: `cleanup.policy is "${setting(names.suppressions, 'cleanup.policy')}", not compact: suppressions would expire; set it: ${alter(names.suppressions, 'cleanup.policy=compact')}` });
  }
  for (const { name, partitions } of metadata.topics) {
    if ([names.submissions, ...names.retries].includes(name) && partitions.length < layout.partitions) {
      problems.push({ topic: name, severity: 'warning', problem: `${partitions.length} partitions, fewer than --partitions ${layout.partitions}: fewer deliverers can share the work` });
    }
    const replicas = partitions[0]?.replicas.length ?? 0;
    if (replicas >= 3 && Number(setting(name, 'min.insync.replicas') ?? 1) < 2 && name !== names.events) {
      problems.push({ topic: name, severity: 'warning', problem: `${replicas} replicas but min.insync.replicas ${setting(name, 'min.insync.replicas')}: one broker alone may acknowledge a message; ${alter(name, 'min.insync.replicas=2')}` });
    }
  }
  return problems;
}

/**
 * Checks the topics now and, while a fatal problem remains, every minute: fatal problems make
 * the role not ready (the reason names the topic and the fix), warnings are logged once.
 */
export function monitorTopics(o: { kafka: Kafka; layout: TopicLayout; logger: Logger }): { notReady: () => string | undefined; stop: () => void } {
  let fatal: TopicProblem[] = [];
  const warned = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async () => {
    const admin = o.kafka.admin();
    try {
      await admin.connect();
      const problems = await checkTopics(admin, o.layout);
      fatal = problems.filter((p) => p.severity === 'fatal');
      for (const p of fatal) o.logger.error({ topic: p.topic, problem: p.problem }, 'Kafka topic would refuse or lose messages; not ready until it is fixed');
      for (const p of problems.filter((x) => x.severity === 'warning' && !warned.has(x.problem))) {
        warned.add(p.problem);
        o.logger.warn({ topic: p.topic, problem: p.problem }, 'Kafka topic setting');
      }
    } catch (error) {
      o.logger.warn({ err: error }, 'cannot check the Kafka topics\' settings; trying again in a minute');
    } finally {
      await admin.disconnect().catch(() => undefined);
      if (!stopped && fatal.length) timer = setTimeout(() => void check(), 60_000).unref();
    }
  };
  const first = check();
  return {
    notReady: () => (fatal.length ? `Kafka topic ${fatal[0]!.topic}: ${fatal[0]!.problem}` : undefined),
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      void first;
    },
  };
}
