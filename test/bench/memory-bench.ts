// `npm run bench:memory`: how much memory one DATA in progress costs the relay, to size its
// pods (the relay keeps a message whole until Kafka has it). A real broker on this machine; per
// round a fresh relay (warmed up with one small message) takes C concurrent messages of about
// S MiB each; its peak RSS (VmHWM) over its RSS before the round, per message in flight.
// Flags: --size-mb S (default 10), --concurrency C,… (default 1,4,8).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { KafkaBroker, repoRoot } from '../kafka/broker.ts';
import { RelayProcess } from '../helpers/relay-process.ts';
import { accountFolder, newApiKey } from '../helpers/resources.ts';

const flag = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : process.argv[at + 1]!;
};
const sizeMb = Number(flag('size-mb', '10'));
const rounds = flag('concurrency', '1,4,8').split(',').map(Number);
const mib = (kb: number) => kb / 1024;
const status = (pid: number, field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
/** Resets the peak (VmHWM) to the current RSS: `echo 5 > /proc/<pid>/clear_refs`. */
const resetPeak = (pid: number) => writeFileSync(`/proc/${pid}/clear_refs`, '5');

const broker = new KafkaBroker({ dir: mkdtempSync(path.join(repoRoot, '.cache', 'bench-memory-')) });
await broker.start();
const key = newApiKey();
const resources = accountFolder(key).dir;
// Base64 text lines, as attachments arrive.
const body = Buffer.alloc(sizeMb * 1024 * 1024 * 0.74, 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n').toString();
const send = (relay: RelayProcess, text = body) => nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.submission, secure: false, ignoreTLS: true, auth: { user: 'smtp_mt_injection', pass: key } })
  .sendMail({ from: 'sender@example.com', to: 'x@recipient.test', subject: 'memory', text });
/** The size of the message as sent (the text is sent as is: 7bit, CRLF lines). */
const messageMib = (body.length + 400) / 1024 / 1024;
const lines = ['| messages in DATA at once | RSS before (MiB) | peak RSS (MiB) | per message in flight (MiB) | per MiB of message |', '| --- | --- | --- | --- | --- |'];
try {
  for (const c of rounds) {
    const relay = await RelayProcess.start({ resources, kafka: broker.bootstrap,
      args: ['--allow-auth-without-tls', '--max-size', String((sizeMb + 1) * 1024 * 1024), '--kafka-timeout', '60000'] });
    const pid = relay.child.pid!;
    try {
      await send(relay, 'warm-up');
      await new Promise((r) => setTimeout(r, 1000));
      const before = status(pid, 'VmRSS');
      resetPeak(pid);
      await Promise.all(Array.from({ length: c }, () => send(relay)));
      const peak = status(pid, 'VmHWM');
      const perMessage = mib(peak - before) / c;
      lines.push(`| ${c} × ${messageMib.toFixed(1)} MiB | ${mib(before).toFixed(0)} | ${mib(peak).toFixed(0)} | ${perMessage.toFixed(1)} | ${(perMessage / messageMib).toFixed(1)} |`);
    } finally {
      await relay.stop();
    }
  }
} finally {
  await broker.stop();
}
process.stdout.write(`${lines.join('\n')}\n`);
