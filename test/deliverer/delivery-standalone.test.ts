// The delivery suite through `mtrelay standalone`: one process, the embedded SQLite queue,
// events in a JSON-lines log. The crash test kills the whole process after its 250s.
// @needs processes openssl dkimpy
// @limit 90s
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { MtrelayProcess } from '../helpers/relay-process.ts';
import { tempDir } from '../helpers/resources.ts';
import { deliverySuite, type Event } from './delivery-suite.ts';

const state = tempDir('standalone-state');
let standalone: MtrelayProcess;
let submitPort = 0;
let resources = '';
let args: string[] = [];

async function start(): Promise<void> {
  standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', resources, '--allow-auth-without-tls',
    '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--tracker-port', '0', '--api-port', '0', '--inbound-port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0', ...args]);
  const ready = await standalone.started('standalone listening');
  submitPort = (ready.ports as { submission: number }).submission;
  standalone.metricsPort = ready.metricsPort as number;
}

deliverySuite({
  async start(dir, deliveryArgs) {
    resources = dir;
    args = deliveryArgs;
    await start();
  },
  submitPort: () => submitPort,
  events() {
    const log = path.join(state, 'events.jsonl');
    if (!existsSync(log)) return [];
    return readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event);
  },
  metric: (name, labels) => standalone.metric(name, labels),
  async crashAndRestart(beforeRestart) {
    await standalone.stop('SIGKILL');
    beforeRestart();
    await start();
  },
  async stop() {
    await standalone?.stop();
  },
});
