// `npm run bench:memory`: how much memory a message in flight costs each role, to size its pods.
// A real broker on this machine; per round a fresh process, warmed up with one message of the
// same size (the heap grows once, for the first large message, and that is not a cost per
// message), has C messages of about S MiB in flight at once; its peak RSS (VmHWM, reset before the round)
// over its RSS before the round, per message in flight.
// - relay: C clients in DATA at once (the relay keeps a message whole until Kafka has it);
// - deliverer: C messages delivered at once to a sink that takes 1.5 s to answer each final dot;
// - standalone: C clients at once, each message then delivered to that slow sink.
// Flags: --size-mb S (default 10), --concurrency C,… (default 1,4,8), --roles relay,deliverer,standalone.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { KafkaBroker, freePort, repoRoot } from '../kafka/broker.ts';
import { DelivererProcess, MtrelayProcess, RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';
import { SmtpSink } from '../helpers/smtp-sink.ts';

const flag = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : process.argv[at + 1]!;
};
const sizeMb = Number(flag('size-mb', '10'));
const rounds = flag('concurrency', '1,4,8').split(',').map(Number);
const roles = flag('roles', 'relay,deliverer,standalone').split(',');
const mib = (kb: number) => kb / 1024;
const status = (pid: number, field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
/** Resets the peak (VmHWM) to the current RSS: `echo 5 > /proc/<pid>/clear_refs`. */
const resetPeak = (pid: number) => writeFileSync(`/proc/${pid}/clear_refs`, '5');

const broker = roles.some((r) => r !== 'standalone') ? new KafkaBroker({ dir: mkdtempSync(path.join(repoRoot, '.cache', 'bench-memory-')) }) : undefined;
await broker?.start();
const key = newApiKey();
const resources = accountFolder(key).dir;
const sink = new SmtpSink({ host: '127.0.0.1', port: await freePort() });
await sink.listen();
// Base64 text lines, as attachments arrive.
const body = Buffer.alloc(sizeMb * 1024 * 1024 * 0.74, 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n').toString();
let sequence = 0;
/** A message to a new recipient, which the sink answers 1.5 s after its final dot. */
const send = (port: number, text = body) => {
  const to = `m${++sequence}@recipient.test`;
  sink.script.set(to, 'slow');
  return nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } })
    .sendMail({ from: 'sender@example.com', to, subject: 'memory', text }).then(() => to);
};
/** The size of the message as sent (the text is sent as is: 7bit, CRLF lines). */
const messageMib = (body.length + 400) / 1024 / 1024;
const route = ['--route', `*=127.0.0.1:${sink.port}`, '--tls-policy', '*=opportunistic'];
const bigSize = String((sizeMb + 1) * 1024 * 1024);

/** One round: `load` puts C messages in flight in `measured`; the peak over the RSS before, per message. */
async function round(measured: MtrelayProcess, warm: () => Promise<unknown>, load: () => Promise<unknown>, c: number): Promise<string> {
  await warm();
  await new Promise((r) => setTimeout(r, 1000));
  const pid = measured.child.pid!;
  const before = status(pid, 'VmRSS');
  resetPeak(pid);
  await load();
  const peak = status(pid, 'VmHWM');
  const perMessage = mib(peak - before) / c;
  return `| ${c} × ${messageMib.toFixed(1)} MiB | ${mib(before).toFixed(0)} | ${mib(peak).toFixed(0)} | ${perMessage.toFixed(1)} | ${(perMessage / messageMib).toFixed(1)} |`;
}

const startRelay = (prefix: string) => RelayProcess.start({ resources, kafka: broker!.bootstrap,
  args: ['--allow-auth-without-tls', '--max-size', bigSize, '--kafka-timeout', '60000', '--topic-prefix', prefix] });
const delivered = (addresses: string[]) => Promise.all(addresses.map((a) => sink.waitFor(a, 1, 120_000)));

const measure: Record<string, (c: number) => Promise<string>> = {
  async relay(c) {
    const relay = await startRelay(`mem-relay-${c}`);
    try {
      return await round(relay, () => send(relay.ports.submission), () => Promise.all(Array.from({ length: c }, () => send(relay.ports.submission))), c);
    } finally {
      await relay.stop();
    }
  },
  async deliverer(c) {
    const prefix = `mem-deliverer-${c}`;
    const relay = await startRelay(prefix);
    const deliverer = await DelivererProcess.start({ resources, kafka: broker!.bootstrap,
      args: ['--topic-prefix', prefix, '--group-id', `g-${prefix}`, '--max-size', bigSize, '--max-in-flight', String(c), '--connections-per-destination', String(c), ...route] });
    try {
      return await round(deliverer, async () => delivered([await send(relay.ports.submission)]),
        async () => delivered(await Promise.all(Array.from({ length: c }, () => send(relay.ports.submission)))), c);
    } finally {
      await Promise.all([relay.stop(), deliverer.stop()]);
    }
  },
  async standalone(c) {
    const state = mkdtempSync(path.join(repoRoot, '.cache', 'bench-memory-standalone-'));
    const standalone = new MtrelayProcess(['standalone', '--state', state, '--resources', resources,
      '--allow-auth-without-tls', '--host', '127.0.0.1', '--port', '0', '--alt-port', '-1', '--smtps-port', '-1', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
      '--max-size', bigSize, '--max-in-flight', String(c), '--connections-per-destination', String(c), ...route]);
    const ready = await standalone.started('standalone listening');
    const port = (ready.ports as { submission: number }).submission;
    try {
      return await round(standalone, async () => delivered([await send(port)]),
        async () => delivered(await Promise.all(Array.from({ length: c }, () => send(port)))), c);
    } finally {
      await standalone.stop();
      rmSync(state, { recursive: true, force: true });
    }
  },
};

const out: string[] = [];
try {
  for (const role of roles) {
    out.push(`\n${role}:\n`, '| messages in flight at once | RSS before (MiB) | peak RSS (MiB) | per message in flight (MiB) | per MiB of message |', '| --- | --- | --- | --- | --- |');
    for (const c of rounds) out.push(await measure[role]!(c));
  }
} finally {
  await sink.close();
  await broker?.stop();
}
process.stdout.write(`${out.join('\n')}\n`);
