// A real Apache Kafka broker (KRaft, combined broker+controller) for tests and development.
// The jars come from Maven Central through test/kafka/pom.xml into an ignored cache folder,
// once; every later start reuses them.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const KAFKA_VERSION = '4.1.1';
const libsDir = path.join(repoRoot, '.cache', `kafka-${KAFKA_VERSION}`, 'libs');

/** Fetches the broker jars with Maven unless they are cached already. */
export function ensureKafkaJars(): string {
  if (existsSync(path.join(libsDir, `kafka_2.13-${KAFKA_VERSION}.jar`))) return libsDir;
  mkdirSync(libsDir, { recursive: true });
  execFileSync(
    'mvn',
    ['-q', '-B', '-f', path.join(here, 'pom.xml'), 'dependency:copy-dependencies',
      `-Dkafka.version=${KAFKA_VERSION}`, `-DoutputDirectory=${libsDir}`, '-Dmdep.includeScope=runtime'],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (readdirSync(libsDir).length === 0) throw new Error(`Maven fetched no Kafka jars into ${libsDir}`);
  return libsDir;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

export interface BrokerOptions {
  /** Folder for the broker's data and logs; created if missing. */
  dir: string;
  /** Largest record the broker takes, to match the relay's SMTP SIZE. */
  maxMessageBytes?: number;
  /** Keep the broker running after this process exits (development use). */
  detached?: boolean;
  /** The KRaft cluster id (22 base64url characters); random when not given. */
  clusterId?: string;
  /**
   * Listeners as managed Kafka services have them, beside PLAINTEXT: SASL_SSL (SCRAM-SHA-256,
   * SCRAM-SHA-512 and PLAIN, for `user`) and SSL that requires a client certificate signed by
   * `caFile`. The broker's certificate (`certFile` + `keyFile`, PKCS#8) must name 127.0.0.1.
   */
  secure?: { caFile: string; certFile: string; keyFile: string; user: { name: string; password: string } };
  /** One node of a multi-node KRaft cluster (kafka-cluster.ts): its id, its ports, and every voter. */
  node?: { id: number; brokerPort: number; controllerPort: number; voters: string; replication: number };
  /** The address of the PLAINTEXT listener (default 127.0.0.1): the bridge's, for pods of the tests' cluster. */
  host?: string;
}

export class KafkaBroker {
  readonly dir: string;
  brokerPort = 0;
  controllerPort = 0;
  saslPort = 0;
  sslPort = 0;
  private process: ChildProcess | undefined;
  private readonly options: BrokerOptions;

  constructor(options: BrokerOptions) {
    this.options = options;
    this.dir = options.dir;
  }

  get bootstrap(): string {
    return `${this.options.host ?? '127.0.0.1'}:${this.brokerPort}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Formats storage (first start only) and starts the broker; resolves once it accepts connections. */
  async start(): Promise<void> {
    const libs = ensureKafkaJars();
    const classpath = path.join(libs, '*');
    const dataDir = path.join(this.dir, 'data');
    const propsFile = path.join(this.dir, 'server.properties');
    if (this.options.node) {
      this.brokerPort = this.options.node.brokerPort;
      this.controllerPort = this.options.node.controllerPort;
    } else if (!this.brokerPort) {
      this.brokerPort = await freePort();
      this.controllerPort = await freePort();
      if (this.options.secure) {
        this.saslPort = await freePort();
        this.sslPort = await freePort();
      }
    }
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(propsFile, this.properties(dataDir));
    // Three nodes of a cluster share the machine with the test: smaller heaps.
    const java = [...(this.options.node ? ['-Xms128m', '-Xmx384m'] : ['-Xms256m', '-Xmx768m']), '-XX:+UseG1GC', '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${path.join(here, 'log4j2.properties')}`, `-Dkafka.logs.dir=${this.dir}`,
      '-cp', classpath];
    if (!existsSync(path.join(dataDir, 'meta.properties'))) {
      // One random id in 64 starts with "-": as a separate argument the tool's parser takes it
      // for a flag, so the id is joined to its option.
      const clusterId = this.options.clusterId ?? randomBytes(16).toString('base64url');
      // SCRAM credentials of a KRaft cluster are written with the storage, before the first start.
      const user = this.options.secure?.user;
      const scram = user ? ['SCRAM-SHA-256', 'SCRAM-SHA-512'].map((m) => `--add-scram=${m}=[name=${user.name},password=${user.password}]`) : [];
      execFileSync('java', [...java, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, `--config=${propsFile}`, ...scram],
        { stdio: ['ignore', 'ignore', 'inherit'] });
    }
    const out = openSync(path.join(this.dir, 'stdout.log'), 'a');
    const child = spawn('java', [...java, 'kafka.Kafka', propsFile], {
      stdio: ['ignore', out, out],
      detached: this.options.detached ?? false,
    });
    this.process = child;
    let exited: number | null | undefined;
    child.once('exit', (code) => { exited = code; });
    const deadline = Date.now() + 90_000;
    // A cluster node listens for clients only once a quorum of controllers is up: its peers may not be started yet.
    if (this.options.node) return;
    while (!(await canConnect(this.brokerPort, this.options.host))) {
      if (exited !== undefined) throw new Error(`Kafka broker exited with ${exited}; see ${this.dir}/stdout.log and server.log`);
      if (Date.now() > deadline) throw new Error(`Kafka broker did not listen on ${this.bootstrap} within 90 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    if (this.options.detached) child.unref();
  }

  /** Stops the broker: SIGTERM for a clean shutdown, or SIGKILL to simulate a crash. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await gone;
    clearTimeout(timer);
    this.process = undefined;
  }

  /** Where clients of the SASL_SSL and the SSL listener connect. */
  get secureBootstrap(): { sasl: string; ssl: string } {
    return { sasl: `127.0.0.1:${this.saslPort}`, ssl: `127.0.0.1:${this.sslPort}` };
  }

  private securityProperties(): string[] {
    const secure = this.options.secure;
    if (!secure) return [];
    const { name, password } = secure.user;
    return [
      // The broker's key and certificate chain in one PEM file, as Kafka's PEM keystore takes them.
      `ssl.keystore.type=PEM`,
      `ssl.keystore.location=${this.#keystore(secure)}`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${secure.caFile}`,
      'listener.name.ssl.ssl.client.auth=required',
      'sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN',
      // ACLs are enforced where a test sets them; everything else stays allowed. The plaintext
      // listeners (controller, inter-broker, tests' admin) are the super user.
      'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      'super.users=User:ANONYMOUS',
      'allow.everyone.if.no.acl.found=true',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${name}="${password}";`,
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    ];
  }

  #keystore(secure: NonNullable<BrokerOptions['secure']>): string {
    const file = path.join(this.dir, 'broker-keystore.pem');
    writeFileSync(file, `${readFileSync(secure.keyFile, 'utf8').trim()}\n${readFileSync(secure.certFile, 'utf8').trim()}\n`);
    return file;
  }

  private properties(dataDir: string): string {
    const max = this.options.maxMessageBytes ?? 32 * 1024 * 1024;
    const secure = this.options.secure ? `,SASL_SSL://127.0.0.1:${this.saslPort},SSL://127.0.0.1:${this.sslPort}` : '';
    const node = this.options.node;
    const replication = node?.replication ?? 1;
    const minIsr = replication >= 3 ? 2 : 1;
    return [
      'process.roles=broker,controller',
      `node.id=${node?.id ?? 1}`,
      `controller.quorum.voters=${node?.voters ?? `1@127.0.0.1:${this.controllerPort}`}`,
      `listeners=PLAINTEXT://${this.options.host ?? '127.0.0.1'}:${this.brokerPort},CONTROLLER://127.0.0.1:${this.controllerPort}${secure}`,
      `advertised.listeners=PLAINTEXT://${this.options.host ?? '127.0.0.1'}:${this.brokerPort}${secure}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL',
      ...this.securityProperties(),
      `log.dirs=${dataDir}`,
      'auto.create.topics.enable=false',
      'num.partitions=1',
      `offsets.topic.replication.factor=${replication}`,
      'offsets.topic.num.partitions=3',
      `transaction.state.log.replication.factor=${replication}`,
      `transaction.state.log.min.isr=${minIsr}`,
      `share.coordinator.state.topic.replication.factor=${replication}`,
      `share.coordinator.state.topic.min.isr=${minIsr}`,
      `default.replication.factor=${replication}`,
      `min.insync.replicas=${minIsr}`,
      'group.initial.rebalance.delay.ms=0',
      `message.max.bytes=${max + 1024 * 1024}`,
      `replica.fetch.max.bytes=${max + 1024 * 1024}`,
      `socket.request.max.bytes=${Math.max(104857600, max * 2)}`,
      '',
    ].join('\n');
  }
}
