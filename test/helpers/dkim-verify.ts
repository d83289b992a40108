// DKIM verification by dkimpy (Python), independent of mailauth that signs in mtrelay: a
// signature both accept is one that real receivers accept. Keys come from the test's DNS
// server, which runs in the test's own process: the verifier runs asynchronously so that
// server can answer it.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('dkim_verify.py', import.meta.url));

/** "pass", or "fail: <dkimpy's reasons>". `dns` is the test DNS server's HOST:PORT. */
export function verifyDkim(message: Buffer, dns: string): Promise<string> {
  const [host, port] = [dns.slice(0, dns.lastIndexOf(':')), dns.slice(dns.lastIndexOf(':') + 1)];
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [script, host, port], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`dkim_verify.py exited ${code}: ${err}`))));
    child.stdin.end(message);
  });
}
