// `npm start` (until standalone mode exists): the development Kafka broker, a self-signed
// certificate, and the relay on the example resources, with a swaks command that works.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../kafka/broker.ts';
import { ensureSystemDeps } from '../system-deps.ts';

ensureSystemDeps();
const state = path.join(repoRoot, '.state');
const tlsDir = path.join(state, 'tls');
mkdirSync(tlsDir, { recursive: true });
const cert = path.join(tlsDir, 'cert.pem');
const key = path.join(tlsDir, 'key.pem');
if (!existsSync(cert)) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '365',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
}
const bootstrap = execFileSync(process.execPath, [path.join(repoRoot, 'test/kafka/cli.ts'), 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
const root = process.getuid?.() === 0;
const port = Number(process.env.MTRELAY_PORT ?? (root ? 587 : 2587));
const args = [path.join(repoRoot, 'cli.ts'), 'relay', '--resources', path.join(repoRoot, 'examples/resources'), '--kafka', bootstrap,
  '--tls-cert', cert, '--tls-key', key, '--port', String(port),
  '--alt-port', process.env.MTRELAY_ALT_PORT ?? (root ? '2525' : '2526'), '--smtps-port', process.env.MTRELAY_SMTPS_PORT ?? (root ? '465' : '2465'),
  '--replication-factor', '1', '--partitions', '3'];
process.stderr.write(`
mtrelay relay on port ${port} (STARTTLS), Kafka at ${bootstrap}. Try it:

  swaks --to someone@example.org --from you@example.com \\
    --auth LOGIN --auth-user smtp_mt_injection \\
    --auth-password mt_example_3f9c1b7e2a6d4f08b5e1c9a7d2f4b6e8 \\
    --server localhost:${port} -tls

Stop with Ctrl-C; stop the broker with npm run kafka:stop.

`);
const relay = spawn(process.execPath, args, { stdio: 'inherit' });
process.on('SIGINT', () => relay.kill('SIGTERM'));
process.on('SIGTERM', () => relay.kill('SIGTERM'));
relay.on('exit', (code) => process.exit(code ?? 0));
