// `npm run bench:image`: the image's size, and how long the relay in it takes from its process
// start (the container's StartedAt) to /readyz 200, against a real broker on this machine.
// Flags: --runs N (default 5).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { KafkaBroker, freePort, repoRoot } from '../kafka/broker.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { buildImage, imageSize, podman, podmanRun } from '../image/containers.ts';
import { ensureSystemTools } from '../system-deps.ts';

const at = process.argv.indexOf('--runs');
const runs = at === -1 ? 5 : Number(process.argv[at + 1]);
ensureSystemTools(['containers', 'java', 'maven']);
const IMAGE = 'localhost/mtrelay:bench';
const builtAt = Date.now();
buildImage(IMAGE);
const buildSeconds = (Date.now() - builtAt) / 1000;
const dir = mkdtempSync(path.join(repoRoot, '.cache', 'bench-image-'));
const broker = new KafkaBroker({ dir });
await broker.start();
const account = accountFolder(newApiKey());
chmodSync(account.dir, 0o755); // the image's user (65532) reads it
const timings: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const metrics = await freePort();
    const name = `bench-relay-${Date.now()}`;
    podman(['run', '--detach', '--name', name, '--network', 'host', '--read-only', '--tmpfs', '/tmp', '--volume', `${account.dir}:/config:ro`, IMAGE,
      'relay', '--resources', '/config', '--kafka', broker.bootstrap, '--host', '127.0.0.1', '--port', String(await freePort()),
      '--alt-port', '-1', '--smtps-port', '-1', '--metrics-host', '127.0.0.1', '--metrics-port', String(metrics)]);
    const deadline = Date.now() + 30_000;
    while ((await fetch(`http://127.0.0.1:${metrics}/readyz`).then((r) => r.status, () => 0)) !== 200) {
      if (Date.now() > deadline) throw new Error(`relay not ready in 30 s: ${podmanRun(['logs', name]).stdout}${podmanRun(['logs', name]).stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const ready = Date.now();
    const started = Number(BigInt(podman(['inspect', '--format', '{{.State.StartedAt.UnixNano}}', name])) / 1_000_000n);
    timings.push(ready - started);
    podmanRun(['rm', '--force', name]);
  }
} finally {
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}
timings.sort((a, b) => a - b);
process.stdout.write([
  `image ${IMAGE}: ${(imageSize(IMAGE) / 1024 / 1024).toFixed(1)} MiB uncompressed (built in ${buildSeconds.toFixed(0)} s)`,
  `relay, process start → /readyz 200 over ${runs} runs: median ${timings[Math.floor(runs / 2)]} ms, max ${timings.at(-1)} ms (${timings.join(', ')})`,
  '',
].join('\n'));
