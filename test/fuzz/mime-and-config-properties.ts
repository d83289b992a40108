// Properties of the paths that rewrite what users send, for the fuzzer: every message the relay
// accepts is fanned out into copies whose header lines are whole CRLF lines within 998
// characters, that never carry X-MT-ATTR or another recipient's Bcc, and whose DKIM signature an
// independent verifier (mailauth) accepts; and the config compiler, fed any YAML, reports
// problems as values and never throws or compiles a document its own schema refuses.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { dkimVerify } from 'mailauth';
import { parseAllDocuments } from 'yaml';
import { dkimSignatureField, relaxedBodyHash } from '../../deliverer/dkim.ts';
import { bodyContent, fanOut } from '../../deliverer/fan-out.ts';
import { checkMessage } from '../../relay/message-checks.ts';
import { validateCompiledConfig } from '../../shared/config/compiled-config.ts';
import { compileConfig, compileDocuments } from '../../shared/config/compiler.ts';
import { parseManifest } from '../../shared/config/manifest-folder.ts';
import { ConfigStore } from '../../shared/config/store.ts';
import { RefusalError, SmtpReply } from '../../shared/smtp-replies.ts';
import type { Submission } from '../../shared/submission-record.ts';
import { apiKeyYaml, newApiKey, signedDomainYaml } from '../helpers/resources.ts';
import { messages } from './smtp-sessions.ts';

const store = new ConfigStore();
store.apply(compileConfig([signedDomainYaml('acme', 'example-com', 'example.com'), apiKeyYaml('acme', 'app', newApiKey())]
  .flatMap((yaml) => parseAllDocuments(yaml).map((d) => ({ source: 'fuzz.yaml', document: d.toJS() })))));
const policy = { store, sandboxDomain: '', maxHeaderBytes: 64 * 1024, maxAttrAddresses: 50 };
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const dkimKey = { domainName: 'example.com', keySelector: 'fuzz', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
const dkimRecord = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
const resolver = async (name: string, type: string) => {
  if (type === 'TXT' && name === 'fuzz._domainkey.example.com') return [[dkimRecord]];
  throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
};

/** Recipients from the envelope, as the relay records them. */
const envelope = fc.array(fc.stringMatching(/^[a-z0-9.]{1,10}$/).map((l) => `${l}@recipient.test`), { minLength: 1, maxLength: 3 });

/** Fans out `message` as the relay would queue it and checks each copy; false when the relay refuses the message (nothing to check). */
export async function fanOutProperty(message: string, to: string[]): Promise<boolean> {
  let checked;
  try {
    // What the relay reads in DATA ends with the CRLF before the final dot.
    checked = checkMessage(Buffer.from(`${message}\r\n`, 'latin1'), 'acme', policy);
  } catch (error) {
    if (error instanceof SmtpReply || error instanceof RefusalError) return false; // refused with a reply: the relay's tests cover which
    throw error;
  }
  const submission: Submission = {
    transmissionId: '1', namespace: 'acme', apiKeyId: 'acme/app', mailFrom: 'sender@example.com', rcptTo: to, sendingDomain: checked.sendingDomain,
    attributes: checked.attributes, receivedAt: new Date().toISOString(), clientAddress: '127.0.0.1', tls: 'none',
  };
  for (const copy of fanOut(checked.raw, submission)) {
    const header = copy.header.toString('latin1');
    assert.match(header, /\r\n$/, 'the header block ends in CRLF');
    assert.doesNotMatch(header, /[^\r]\n|\r[^\n]/, 'only CRLF line ends in the header');
    for (const line of header.split('\r\n')) assert.ok(line.length <= 998, `a header line is ${line.length} characters`);
    assert.doesNotMatch(header, /^x-mt-attr:/im, 'X-MT-ATTR is removed');
    const bcc = header.match(/^bcc:.*$/gim) ?? [];
    if (copy.rcptType === 'bcc') assert.equal(bcc.length, 1, 'a bcc copy names its own recipient');
    else assert.deepEqual(bcc, [], 'no Bcc on a copy that is not a bcc copy');
    const field = await dkimSignatureField(copy.header, relaxedBodyHash(bodyContent(copy)), dkimKey);
    const signed = Buffer.concat([field, copy.header, copy.body]);
    const { results } = await dkimVerify(signed, { resolver } as never) as { results: { status: { result: string } }[] };
    assert.equal(results[0]?.status.result, 'pass', `mailauth does not verify the copy for ${copy.rcptTo}`);
  }
  return true;
}

export const fanOutArbitrary = fc.tuple(messages(), envelope);

const field = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }));
/** Manifests of every kind mtrelay reads, with fields replaced at random, and YAML text that is barely YAML. */
export const manifestArbitrary = fc.oneof(
  fc.tuple(fc.constantFrom('SendingDomain', 'ApiKey', 'Secret', 'AccountSettings', 'Webhook', 'ConfigMap', ''), fc.constantFrom('mtrelay.dev/v1alpha1', 'v1', 'x/v9'),
    fc.dictionary(fc.constantFrom('domain', 'permissions', 'secretRef', 'disabled', 'expiresAt', 'url', 'events', 'auth', 'tracking', 'dkim', 'trackingDomain', 'signing', 'data', 'stringData'), field, { maxKeys: 5 }),
    fc.option(fc.string({ maxLength: 30 })), fc.option(fc.string({ maxLength: 30 })))
    .map(([kind, apiVersion, spec, name, namespace]) => JSON.stringify({ apiVersion, kind, metadata: { name, namespace }, spec, data: spec, stringData: spec })),
  fc.string({ maxLength: 200 }),
  fc.constantFrom(signedDomainYaml('acme', 'a', 'a.example'), apiKeyYaml('acme', 'k', newApiKey())),
);

/** Reads `texts` as the files of a folder and compiles them: problems are values, and what compiles passes its own schema. */
export function compilerProperty(texts: string[]): void {
  const documents = texts.flatMap((text, i) => {
    const parsed = parseManifest(text, `f${i}.yaml`);
    return Array.isArray(parsed) ? parsed : [];
  });
  const { config, problems } = compileDocuments(documents);
  assert.ok(validateCompiledConfig(config), 'the compiled document passes its schema');
  for (const problem of problems) assert.equal(typeof problem.message, 'string');
}
