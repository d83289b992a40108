// A three-node KRaft cluster on loopback, the shape production runs (replication factor 3,
// min.insync.replicas 2): each node is broker and controller, and any one may be killed and
// started again. Built from the single broker of broker.ts.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { KafkaBroker, canConnect, freePort } from './broker.ts';

export class KafkaCluster {
  readonly nodes: KafkaBroker[];

  private constructor(nodes: KafkaBroker[]) {
    this.nodes = nodes;
  }

  /** Three nodes in `dir` (formatted with one cluster id), started together; resolves once all take clients. */
  static async start(dir: string, size = 3): Promise<KafkaCluster> {
    const ports = await Promise.all(Array.from({ length: size }, async () => ({ broker: await freePort(), controller: await freePort() })));
    const voters = ports.map((p, i) => `${i + 1}@127.0.0.1:${p.controller}`).join(',');
    const clusterId = randomBytes(16).toString('base64url').replace(/^-/, 'A');
    const nodes = ports.map((p, i) => new KafkaBroker({
      dir: path.join(dir, `node-${i + 1}`), clusterId,
      node: { id: i + 1, brokerPort: p.broker, controllerPort: p.controller, voters, replication: size },
    }));
    const cluster = new KafkaCluster(nodes);
    await Promise.all(nodes.map((n) => n.start()));
    await cluster.listening();
    return cluster;
  }

  get bootstrap(): string {
    return this.nodes.map((n) => n.bootstrap).join(',');
  }

  /** Starts node `i` (0-based) again after a stop, and waits until it takes clients. */
  async restart(i: number): Promise<void> {
    await this.nodes[i]!.start();
    await this.listening([i]);
  }

  async listening(which = this.nodes.map((_, i) => i), timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const i of which) {
      while (!(await canConnect(this.nodes[i]!.brokerPort))) {
        if (Date.now() > deadline) throw new Error(`Kafka node ${i + 1} did not listen within ${timeoutMs} ms; see ${this.nodes[i]!.dir}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
