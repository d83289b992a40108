// Runs the real swaks client and reads its transcript.
import { spawn } from 'node:child_process';

export interface SwaksResult {
  code: number | null;
  output: string;
  /** The reply lines the server sent, without swaks' prefixes. */
  replies: string[];
  /** The server's reply to the end of DATA, if the transaction got that far. */
  dataReply: string | undefined;
}

export function swaks(args: string[], input?: string): Promise<SwaksResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('swaks', ['--timeout', '30', '--hide-informational', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.stdin.end(input ?? '');
    child.on('close', (code) => {
      // swaks marks server lines "<-" (plain), "<~" (TLS), "<**" or "<~*" (error replies).
      const reply = /^<(?:[~-]|\*)\*?\s+(?=\d{3})/;
      const replies = output.split('\n').filter((l) => reply.test(l)).map((l) => l.replace(reply, ''));
      const lines = output.split('\n');
      const dot = lines.findIndex((l) => /^ [~-]> \.$/.test(l));
      const after = dot === -1 ? undefined : lines.slice(dot + 1).find((l) => reply.test(l));
      resolve({ code, output, replies, dataReply: after?.replace(reply, '') });
    });
  });
}

/** The usual arguments for an authenticated submission to the relay. */
export function submitArgs(opts: { port: number; key: string; from?: string; to?: string; auth?: string; tls?: 'starttls' | 'implicit' | 'none'; ca?: string }): string[] {
  const tls = opts.tls ?? 'starttls';
  return [
    '--server', `127.0.0.1:${opts.port}`,
    '--from', opts.from ?? 'sender@example.com',
    '--to', opts.to ?? 'someone@recipient.test',
    '--auth', opts.auth ?? 'LOGIN', '--auth-user', 'smtp_mt_injection', '--auth-password', opts.key,
    ...(tls === 'starttls' ? ['-tls'] : tls === 'implicit' ? ['-tlsc'] : []),
    ...(opts.ca && tls !== 'none' ? ['--tls-verify', '--tls-ca-path', opts.ca] : []),
  ];
}
