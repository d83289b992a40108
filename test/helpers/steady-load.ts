// A client that sends steadily through the relay (or standalone) while a test breaks things:
// one message per transaction over kept connections, reconnecting after any failure, and every
// message's Message-ID and reply recorded, so that a test can check each 250 against the mailbox.
import { randomUUID } from 'node:crypto';
import { RawSmtp } from './smtp-raw.ts';
import type { SmtpSink } from './smtp-sink.ts';

export interface Sent { messageId: string; startedAt: number; reply: string }

/** STARTTLS before AUTH, trusting `ca` for the name `servername`: a relay that allows AUTH only over TLS. */
export interface LoadTls { ca: Buffer; servername: string }

/** `workers` clients sending about `rate` messages a second in all to the port `port()` names (it may change across restarts). */
export function steadyLoad(port: () => number, key: string, rate: number, workers: number, tls?: LoadTls): { sent: Sent[]; stop: () => Promise<void> } {
  const sent: Sent[] = [];
  let running = true;
  const interval = (1000 * workers) / rate;
  const worker = async () => {
    let client: RawSmtp | undefined;
    while (running) {
      const started = Date.now();
      const messageId = `<${randomUUID()}@steady.test>`;
      let reply = '(no reply)';
      try {
        if (!client || client.closed) {
          client = await RawSmtp.connect(port());
          const greeting = await client.reply(5000);
          if (!greeting?.startsWith('220')) throw new Error(`greeting: ${greeting}`);
          if (tls) {
            await client.command('EHLO client.test');
            await client.startTls(tls.ca, { servername: tls.servername });
          }
          const auth = await client.login(key);
          if (!auth?.startsWith('235')) throw new Error(`AUTH: ${auth}`);
        }
        const mail = await client.command('MAIL FROM:<sender@example.com>');
        if (!mail?.startsWith('250')) throw new Error(`MAIL: ${mail}`);
        const rcpt = await client.command('RCPT TO:<someone@recipient.test>');
        if (!rcpt?.startsWith('250')) throw new Error(`RCPT: ${rcpt}`);
        const data = await client.command('DATA');
        if (!data?.startsWith('354')) throw new Error(`DATA: ${data}`);
        reply = (await client.command(`From: sender@example.com\r\nMessage-ID: ${messageId}\r\nSubject: steady\r\n\r\nsteady\r\n.`, 30_000)) ?? '(closed)';
      } catch (error) {
        reply = `(failed: ${(error as Error).message.slice(0, 80)})`;
        client?.close();
        client = undefined;
        await new Promise((r) => setTimeout(r, 250)); // as a client waits before it reconnects
      }
      sent.push({ messageId, startedAt: started, reply });
      await new Promise((r) => setTimeout(r, Math.max(0, interval - (Date.now() - started))));
    }
    client?.close();
  };
  const all = Array.from({ length: workers }, () => worker());
  return { sent, stop: async () => { running = false; await Promise.all(all); } };
}

export const isAccepted = (s: Sent) => /^250 2\.0\.0 OK \d+$/.test(s.reply);

/** A clean refusal: the server answered 421 (greeting, MAIL or the data) and the client reconnected, rather than a broken or refused connection. */
export const isClean421 = (s: Sent) => /^(?:\(failed: \w+: )?421 /.test(s.reply);

/** Waits until every accepted message arrived at `sink` (or `timeoutMs` passed); what arrived, by Message-ID, with how often. */
export async function arrivals(sink: SmtpSink, accepted: Sent[], timeoutMs = 120_000): Promise<Map<string, number>> {
  const arrived = new Map<string, number>();
  const count = () => {
    arrived.clear();
    for (const r of sink.received) {
      const id = /^Message-ID: (<[^>]+>)/im.exec(r.message.toString('latin1'))?.[1];
      if (id) arrived.set(id, (arrived.get(id) ?? 0) + 1);
    }
  };
  const deadline = Date.now() + timeoutMs;
  for (count(); accepted.some((s) => !arrived.has(s.messageId)) && Date.now() < deadline; count()) await new Promise((r) => setTimeout(r, 1000));
  return arrived;
}

/** What became of a load's messages: those answered 250, how many of its messages arrived, those lost, and the extra copies (only this load's are counted, so a mailbox may hold other mail). */
export async function tally(sink: SmtpSink, sent: Sent[], timeoutMs?: number): Promise<{ accepted: Sent[]; delivered: number; lost: Sent[]; duplicates: number }> {
  const accepted = sent.filter(isAccepted);
  const arrived = await arrivals(sink, accepted, timeoutMs);
  const copies = sent.map((s) => arrived.get(s.messageId) ?? 0);
  return {
    accepted, delivered: copies.filter((c) => c > 0).length, lost: accepted.filter((s) => !arrived.has(s.messageId)),
    duplicates: copies.reduce((n, c) => n + Math.max(0, c - 1), 0),
  };
}
