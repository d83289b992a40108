// The delivery suite through relay → Kafka → deliverer, each a real process.
// @needs kafka processes openssl dkimpy
// @limit 150s
import { testKafka } from '../helpers/env.ts';
import { KafkaReader } from '../helpers/kafka-reader.ts';
import { DelivererProcess, RelayProcess } from '../helpers/relay-process.ts';
import { deliverySuite, type Event } from './delivery-suite.ts';

const prefix = `d${Date.now()}`;
let relay: RelayProcess;
let deliverer: DelivererProcess;
let events: KafkaReader;
let resources = '';
let args: string[] = [];

const startDeliverer = () => DelivererProcess.start({ resources, kafka: testKafka(), args: ['--topic-prefix', prefix, '--group-id', `g-${prefix}`, ...args] });

deliverySuite({
  async start(dir, deliveryArgs) {
    resources = dir;
    args = deliveryArgs;
    relay = await RelayProcess.start({ resources, kafka: testKafka(), args: ['--allow-auth-without-tls', '--topic-prefix', prefix, '--retry-delays', '1s,2s'] });
    events = await KafkaReader.start(testKafka(), `${prefix}.events`);
    deliverer = await startDeliverer();
  },
  submitPort: () => relay.ports.submission,
  events: () => events.records.map((r) => JSON.parse(r.value.toString()) as Event),
  metric: (name, labels) => deliverer.metric(name, labels),
  async crashAndRestart(beforeRestart) {
    await deliverer.stop('SIGKILL');
    beforeRestart();
    deliverer = await startDeliverer();
  },
  async stop() {
    await Promise.all([relay?.stop(), deliverer?.stop(), events?.stop()]);
  },
});
