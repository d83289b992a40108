// `npm run kafka:start` / `npm run kafka:stop`: the test broker, for development.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KafkaBroker, repoRoot } from './broker.ts';
import { isRunning } from '../helpers/pids.ts';

const dir = path.join(repoRoot, '.state', 'kafka-dev');
const stateFile = path.join(dir, 'broker.json');

const command = process.argv[2];
if (command === 'start') {
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { pid: number; bootstrap: string };
    if (isRunning(state.pid)) {
      console.log(state.bootstrap);
      process.exit(0);
    }
  }
  const broker = new KafkaBroker({ dir, detached: true });
  await broker.start();
  writeFileSync(stateFile, JSON.stringify({ pid: broker.pid, bootstrap: broker.bootstrap }));
  console.error(`Kafka broker (pid ${broker.pid}) listening; data in ${dir}`);
  console.log(broker.bootstrap);
  process.exit(0);
} else if (command === 'stop') {
  if (!existsSync(stateFile)) {
    console.error('no development broker is running');
    process.exit(0);
  }
  const { pid } = JSON.parse(readFileSync(stateFile, 'utf8')) as { pid: number };
  if (isRunning(pid)) process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 300 && isRunning(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  rmSync(stateFile);
  console.error(`Kafka broker (pid ${pid}) stopped`);
} else {
  console.error('usage: node test/kafka/cli.ts start|stop');
  process.exit(2);
}
