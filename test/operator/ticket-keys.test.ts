// The TLS ticket key relay replicas share, end to end: the operator puts it in the relay's
// config, two relays reading that config resume each other's TLS sessions, a new leader keeps
// the key, and at the rotation period a new key replaces it on every relay.
// @needs k8s kafka processes openssl
// @limit 90s
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { decodeConfigSecrets, readConfigIndex } from '../../shared/config/config-secrets.ts';
import type { CompiledConfig } from '../../shared/config/types.ts';
import { testKafka } from '../helpers/env.ts';
import { RelayProcess, type MtrelayProcess } from '../helpers/relay-process.ts';
import { RawSmtp } from '../helpers/smtp-raw.ts';
import { createTestCa } from '../helpers/tls.ts';
import { OperatorCluster, SYSTEM, eventually } from './cluster-fixture.ts';

const ca = createTestCa();
const certificate = ca.issue('relay', ['localhost', '127.0.0.1']);
let cluster: OperatorCluster;
const running: MtrelayProcess[] = [];

before(async () => {
  cluster = await OperatorCluster.start('ticket-keys');
});
after(async () => {
  for (const process of running) await process.stop();
  await cluster?.stop();
});

/** The relay config Secret set as the operator last wrote it. */
function relayConfig(): CompiledConfig | undefined {
  const data = (name: string) => cluster.getJson(['secret', '-n', SYSTEM, name]).data;
  try {
    const index = readConfigIndex(data('mtrelay-relay-config'));
    return index && decodeConfigSecrets(index, data);
  } catch {
    return undefined;
  }
}

async function leader(identity: string, args: string[] = []): Promise<MtrelayProcess> {
  const operator = await cluster.startOperator(identity, args);
  running.push(operator);
  await operator.waitForLog((l) => l.msg === 'became the leader', 20_000);
  return operator;
}

async function relay(): Promise<RelayProcess> {
  const process = await RelayProcess.start({ kafka: testKafka(), tls: certificate, args: ['--config-secret', `${SYSTEM}/mtrelay-relay-config`, '--kubeconfig', cluster.relayKubeconfig] });
  running.push(process);
  return process;
}

/** A STARTTLS session on `relay`, offering `session`: was it resumed, and the session to offer next. */
async function startTls(target: RelayProcess, session?: Buffer): Promise<{ resumed: boolean; next: Buffer | undefined }> {
  const smtp = await RawSmtp.connect(target.ports.submission);
  await smtp.reply();
  await smtp.command('EHLO client.test');
  const socket = await smtp.startTls(readFileSync(ca.caCert), session ? { session } : {});
  await smtp.command('EHLO client.test');
  const result = { resumed: socket.isSessionReused(), next: smtp.tlsSession };
  smtp.close();
  return result;
}

test('relays share the operator\'s ticket key: sessions resume across them; a new leader keeps it; rotation replaces it everywhere', async () => {
  const first = await leader('keys-a');
  const key = await eventually('a ticket key in the relay config', () => relayConfig()?.tls);
  assert.equal(Buffer.from(key.ticketKey, 'base64').length, 48);
  const [a, b] = await Promise.all([relay(), relay()]);
  await Promise.all([a, b].map((r) => r.waitForLog((l) => l.msg === 'TLS ticket key from the config in use')));
  const full = await startTls(a);
  assert.equal(full.resumed, false);
  assert.equal((await startTls(b, full.next)).resumed, true, 'a session from relay A resumes on relay B');

  // A new leader reads the key back instead of making its own.
  await first.stop();
  await leader('keys-b');
  cluster.apply(['apiVersion: mtrelay.dev/v1alpha1', 'kind: ApiKey', 'metadata: {name: after-handover, namespace: acme}', 'spec: {permissions: [smtp/send]}']);
  await eventually('the new key in the relay config', () => relayConfig()?.apiKeys.some((k) => k.id === 'acme/after-handover'), 30_000);
  assert.deepEqual(relayConfig()?.tls, key);
  assert.equal((await startTls(a, full.next)).resumed, true);

  // A leader with a short rotation period replaces it, and both relays follow.
  await running.find((p) => p !== a && p !== b && p.child.exitCode === null)?.stop();
  await leader('keys-c', ['--tls-ticket-key-rotation', '2s']);
  const rotated = await eventually('a new ticket key', () => { const tls = relayConfig()?.tls; return tls && tls.ticketKey !== key.ticketKey && tls; }, 30_000);
  assert.ok(Date.parse(rotated.issuedAt) > Date.parse(key.issuedAt));
  await eventually('both relays took a newer key', () => [a, b].every((r) => r.logs.filter((l) => l.msg === 'TLS ticket key from the config in use').length >= 2));
  const fresh = await startTls(a);
  assert.equal(fresh.resumed, false, 'a session from before the rotation makes a full handshake');
  assert.equal((await startTls(b, fresh.next)).resumed, true);
});
