// Command-line flags of `npm run bench:e2e` (no environment variables: every knob is a flag
// with a default, printed with --help).
import { parseArgs } from 'node:util';
import { count } from './bench-options.ts';

export const E2E_USAGE = `npm run bench:e2e -- [flags]
  --messages N          messages in the measured full load (default 6000)
  --connections C       concurrent SMTP connections of the load (default 50)
  --sizes S,…           message sizes in bytes, each a run of every system (default 4096,102400;
                        add 1048576,10485760 for 1 MB and 10 MB)
  --warmup W            messages sent and delivered first, not counted (default 3000)
  --rate R              messages/s of the fixed-rate phase, 0 to skip it (default 300)
  --seconds T           length of the fixed-rate phase (default 10)
  --out-connections K   SMTP connections to the sink: the deliverer's --connections-per-destination
                        and Postfix's destination concurrency (default 20)
  --max-in-flight F     the deliverer's --max-in-flight (default 200, its own default)
  --deliver-timeout T   seconds to wait, after the load, for the last delivery (default 60)
  --kafka-compression Z the relay's and deliverer's --kafka-compression: none, gzip or zstd
                        (default none, their own default)
  --kafka/--no-kafka             relay + deliverer + Kafka broker (default on)
  --standalone/--no-standalone   mtrelay standalone (default on)
  --postfix/--no-postfix         Postfix relaying to the sink (default on)
  --html                HTML newsletters (multipart/alternative, a short text part and
                        quoted-printable HTML with 20 links; html-message.ts) instead of the
                        --sizes messages, untracked
  --tracking            the same HTML newsletters with open and click tracking on in every mtrelay
                        run (Postfix sends them as they are: it does not track); with --html as well,
                        each mtrelay mode runs both ways and the report shows what tracking costs
  --html-size B         bytes of an HTML newsletter, at least 10752 (default 11264: about 10 KB of
                        it HTML)
  --throttle R          instead: the sink answers 421 4.7.28 beyond R msgs/s, as a provider under
                        pressure does, and each system delivers --messages 4 KB messages to it
                        (mtrelay standalone with and without per-provider shaping, mtrelay in Kafka
                        mode with it, Postfix); reports the pace each settles at and the 421s it
                        drew. Try --throttle 50 --messages 3000 --connections 20`;

export interface E2eFlags {
  messages: number;
  connections: number;
  sizes: number[];
  warmup: number;
  /** Messages/s of the open-loop phase; 0: no such phase. */
  rate: number;
  seconds: number;
  outConnections: number;
  maxInFlight: number;
  deliverTimeoutSeconds: number;
  kafkaCompression: string;
  kafka: boolean;
  standalone: boolean;
  postfix: boolean;
  /** HTML newsletters, untracked runs. */
  html: boolean;
  /** HTML newsletters, tracked runs of mtrelay. */
  tracking: boolean;
  htmlSize: number;
  /** Msgs/s beyond which the sink throttles; 0: the normal benchmark. */
  throttle: number;
}

/** The flags, or undefined after printing the usage for --help. */
export function parseE2eFlags(argv: string[]): E2eFlags | undefined {
  const { values } = parseArgs({
    args: argv,
    allowNegative: true,
    options: {
      messages: { type: 'string', default: '6000' },
      connections: { type: 'string', default: '50' },
      sizes: { type: 'string', default: '4096,102400' },
      warmup: { type: 'string', default: '3000' },
      rate: { type: 'string', default: '300' },
      seconds: { type: 'string', default: '10' },
      'out-connections': { type: 'string', default: '20' },
      'max-in-flight': { type: 'string', default: '200' },
      'deliver-timeout': { type: 'string', default: '60' },
      'kafka-compression': { type: 'string', default: 'none' },
      kafka: { type: 'boolean', default: true },
      standalone: { type: 'boolean', default: true },
      postfix: { type: 'boolean', default: true },
      html: { type: 'boolean', default: false },
      tracking: { type: 'boolean', default: false },
      'html-size': { type: 'string', default: '11264' },
      throttle: { type: 'string', default: '0' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${E2E_USAGE}\n`);
    return undefined;
  }
  const htmlSize = count('html-size', values['html-size'], 10752);
  const htmlMessages = values.html || values.tracking;
  return {
    messages: count('messages', values.messages),
    connections: count('connections', values.connections),
    // The newsletters have one size of their own.
    sizes: htmlMessages ? [htmlSize] : values.sizes.split(',').map((v) => count('sizes', v.trim(), 512)),
    warmup: count('warmup', values.warmup, 0),
    rate: count('rate', values.rate, 0),
    seconds: count('seconds', values.seconds),
    outConnections: count('out-connections', values['out-connections']),
    maxInFlight: count('max-in-flight', values['max-in-flight']),
    deliverTimeoutSeconds: count('deliver-timeout', values['deliver-timeout']),
    kafkaCompression: values['kafka-compression'],
    kafka: values.kafka,
    standalone: values.standalone,
    postfix: values.postfix,
    html: values.html,
    tracking: values.tracking,
    htmlSize,
    throttle: count('throttle', values.throttle, 0),
  };
}
