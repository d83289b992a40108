// The config compiler on manifest folders, as a user would write them for kubectl apply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { relayView } from '../../shared/config/compiled-config.ts';
import { compileConfig, compileDocuments, compileResources } from '../../shared/config/compiler.ts';
import { sha256Hex } from '../../shared/config/hash.ts';
import { ConfigCompileError, describeProblem } from '../../shared/config/problems.ts';
import { compileManifestFolder } from '../../shared/config/manifest-folder.ts';
import { accountFolder, apiKeyYaml, newApiKey, sendingDomainYaml } from '../helpers/resources.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const docs = (...yaml: string[]) => yaml.flatMap((y, i) => parseAllDocuments(y).map((d) => ({ source: `file${i}.yaml`, document: d.toJS() })));

test('the example resources compile with a key Secret beside them: domain per namespace, key as hash and prefix only', async () => {
  const folder = accountFolder(newApiKey());
  const key = newApiKey();
  for (const file of ['sending-domain.yaml', 'api-key.yaml']) folder.write(file, readFileSync(new URL(`../../examples/resources/${file}`, import.meta.url), 'utf8'));
  folder.remove('domain.yaml');
  folder.remove('key.yaml');
  folder.remove('dkim.yaml'); // the example has no key: the relay refuses its mail until one exists (noDkimKey)
  folder.write('app-sender-apikey.yaml', `apiVersion: v1\nkind: Secret\nmetadata: {name: app-sender-apikey, namespace: acme}\nstringData: {apiKey: ${key}}\n`);
  const config = await compileManifestFolder(folder.dir);
  assert.equal(config.apiVersion, 'mtrelay.dev/config/v1');
  assert.deepEqual(config.namespaces, { acme: { domains: { 'example.com': { domain: 'example.com', resource: 'example-com', dkimSelector: 'mt1', noDkimKey: true } } } });
  assert.deepEqual(config.apiKeys, [{
    id: 'acme/app-sender', namespace: 'acme', sha256: sha256Hex(key), prefix: key.slice(0, 6), permissions: ['smtp/send'], disabled: false,
  }]);
  assert.ok(!JSON.stringify(config).includes(key.slice(6)), 'the key itself is not in the document');
});

test('the examples publish no key', () => {
  for (const file of readdirSync(new URL('../../examples/resources', import.meta.url))) {
    const text = readFileSync(new URL(`../../examples/resources/${file}`, import.meta.url), 'utf8');
    assert.doesNotMatch(text, /^kind: Secret$/m, `${file} holds a Secret: examples must not publish keys`);
  }
});

test('the revision depends on content only, not on file order', async () => {
  const key = newApiKey();
  const a = compileConfig(docs(sendingDomainYaml('acme', 'a', 'a.example'), sendingDomainYaml('acme', 'b', 'b.example'), apiKeyYaml('acme', 'k', key)));
  const b = compileConfig(docs(apiKeyYaml('acme', 'k', key), sendingDomainYaml('acme', 'b', 'b.example'), sendingDomainYaml('acme', 'a', 'a.example')));
  assert.equal(a.revision, b.revision);
  const c = compileConfig(docs(apiKeyYaml('acme', 'k', key, { disabled: true }), sendingDomainYaml('acme', 'a', 'a.example'), sendingDomainYaml('acme', 'b', 'b.example')));
  assert.notEqual(a.revision, c.revision);
});

test('every problem is reported at once, with its file or resource', () => {
  const key = newApiKey();
  assert.throws(() => compileConfig(docs(
      sendingDomainYaml('acme', 'one', 'shared.example'),
      sendingDomainYaml('other', 'two', 'shared.example'),
      apiKeyYaml('acme', 'short', 'tooshort'),
      'apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: orphan, namespace: acme}\nspec: {permissions: [smtp/send], secretRef: {name: missing}}\n',
      'apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: typo, namespace: acme}\nspec: {permissions: [smtp/send], secretRf: {name: x}}\n',
      apiKeyYaml('acme', 'twin-a', key), apiKeyYaml('acme', 'twin-b', key),
      'just: a map\n',
  )), (error: unknown) => {
    assert.ok(error instanceof ConfigCompileError);
    assert.equal(error.code, 'MTR_ERR_CONFIG');
    assert.deepEqual(error.problems.map(describeProblem).sort(), [
      'ApiKey acme/orphan: Secret acme/missing not found',
      'ApiKey acme/short: the API key in Secret acme/short-key is shorter than 20 characters',
      'ApiKey acme/twin-b: uses the same key as ApiKey acme/twin-a; every ApiKey needs its own',
      'SendingDomain other/two: domain shared.example is already claimed by SendingDomain acme/one',
      'file4.yaml: ApiKey acme/typo: spec.secretRf: is not a known field',
      'file7.yaml: not a Kubernetes resource (apiVersion and kind are required)',
    ]);
    // Problems are values: the resource each is about, for an Event on it.
    assert.deepEqual(error.problems.find((p) => p.resource?.name === 'orphan'), {
      resource: { kind: 'ApiKey', namespace: 'acme', name: 'orphan' }, message: 'Secret acme/missing not found',
    });
    return true;
  });
});

test('other kinds in the folder are ignored; a YAML syntax error names the file', async () => {
  const folder = accountFolder(newApiKey());
  folder.write('deployment.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n');
  const config = await compileManifestFolder(folder.dir);
  assert.equal(config.apiKeys.length, 1);
  folder.write('zz-broken.yaml', 'kind: [unclosed\n');
  await assert.rejects(compileManifestFolder(folder.dir), (e: Error) => e instanceof ConfigCompileError && /^zz-broken\.yaml: /.test(e.message));
  // Found by the fuzzer: an alias to no anchor parses without errors and used to throw a bare ReferenceError.
  folder.write('zz-broken.yaml', '*!');
  await assert.rejects(compileManifestFolder(folder.dir), (e: Error) => e instanceof ConfigCompileError && /^zz-broken\.yaml: Unresolved alias/.test(e.message));
});

test('a DKIM key in the <name>-dkim Secret reaches the deliverer\'s config, never the relay\'s', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const secret = `apiVersion: v1\nkind: Secret\nmetadata: {name: shop-dkim, namespace: acme}\nstringData:\n  privateKey: |\n${pem.trim().split('\n').map((l) => `    ${l}`).join('\n')}\n`;
  const config = compileConfig(docs(sendingDomainYaml('acme', 'shop', 'shop.example'), secret));
  assert.equal(config.namespaces.acme!.domains['shop.example']!.dkimPrivateKey, pem);
  assert.equal(config.namespaces.acme!.domains['shop.example']!.noDkimKey, undefined);
  const relay = relayView(config);
  assert.equal(relay.namespaces.acme!.domains['shop.example']!.dkimPrivateKey, undefined);
  assert.equal(relay.namespaces.acme!.domains['shop.example']!.noDkimKey, undefined, 'the relay knows a key exists, not the key');
  assert.ok(!JSON.stringify(relay).includes('PRIVATE KEY'));
  assert.throws(() => compileConfig(docs(sendingDomainYaml('acme', 'shop', 'shop.example'),
    'apiVersion: v1\nkind: Secret\nmetadata: {name: shop-dkim, namespace: acme}\nstringData: {privateKey: nonsense}\n')), /has no PEM private key "privateKey"/);
});

test('leniently compiled (the operator\'s way), a bad key is a problem of its own domain only, which stays in without a key (451, not 550)', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const domain = (name: string) => ({ apiVersion: 'mtrelay.dev/v1alpha1' as const, kind: 'SendingDomain' as const, metadata: { name, namespace: 'acme' }, spec: { domain: `${name}.example` } });
  const secret = (name: string, privateKey: string) => ({ apiVersion: 'v1' as const, kind: 'Secret' as const, metadata: { name: `${name}-dkim`, namespace: 'acme' }, stringData: { privateKey } });
  const { config, problems } = compileResources({
    domains: [domain('good'), domain('public')], apiKeys: [],
    secrets: new Map([['acme/good-dkim', secret('good', pem)], ['acme/public-dkim', secret('public', publicPem)]]),
  });
  assert.deepEqual(Object.keys(config.namespaces.acme!.domains), ['good.example', 'public.example']);
  assert.equal(config.namespaces.acme!.domains['good.example']!.noDkimKey, undefined);
  assert.equal(config.namespaces.acme!.domains['public.example']!.noDkimKey, true);
  assert.equal(config.namespaces.acme!.domains['public.example']!.dkimPrivateKey, undefined);
  assert.deepEqual(problems.map(describeProblem), ['SendingDomain acme/public: Secret acme/public-dkim has no PEM private key "privateKey"']);
});

test('an ApiKey without secretRef reads the Secret named as the operator names generated keys: <name>-apikey, key apiKey', () => {
  const key = newApiKey();
  const config = compileConfig(docs(
    'apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: app, namespace: acme}\nspec: {permissions: [smtp/send]}\n',
    `apiVersion: v1\nkind: Secret\nmetadata: {name: app-apikey, namespace: acme}\nstringData: {apiKey: ${key}}\n`,
  ));
  assert.equal(config.apiKeys[0]?.sha256, sha256Hex(key));
  assert.throws(() => compileConfig(docs('apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata: {name: lone, namespace: acme}\nspec: {permissions: [smtp/send]}\n')),
    /ApiKey acme\/lone: Secret acme\/lone-apikey not found \(an ApiKey without spec\.secretRef reads Secret lone-apikey, key apiKey\)/);
});

test('a resource defined twice is left out altogether (a stale copy must not undo a revocation); the rest compiles', () => {
  const key = newApiKey();
  const other = newApiKey();
  const { config, problems } = compileDocuments(docs(apiKeyYaml('acme', 'app', key, { disabled: true }), apiKeyYaml('acme', 'app', key), apiKeyYaml('acme', 'other', other)));
  assert.deepEqual(config.apiKeys.map((k) => k.id), ['acme/other']);
  assert.ok(problems.map(describeProblem).some((p) => /^ApiKey acme\/app: is defined twice; every definition is left out until one remains$/.test(p)), problems.map(describeProblem).join('; '));
});

test("an ApiKey's limits reach the relay's view; a limit that is not a positive whole number is refused with its path", () => {
  const key = newApiKey();
  const config = compileConfig(docs(apiKeyYaml('acme', 'app', key, { limits: { messagesPerHour: 100, messagesPerDay: 1000, recipientsPerMessage: 10 } })));
  assert.deepEqual(relayView(config).apiKeys[0]?.limits, { messagesPerHour: 100, messagesPerDay: 1000, recipientsPerMessage: 10 });
  assert.equal(compileConfig(docs(apiKeyYaml('acme', 'app', key))).apiKeys[0]?.limits, undefined, 'no limits: none in the config');
  assert.throws(() => compileConfig(docs(apiKeyYaml('acme', 'app', key, { limits: { messagesPerHour: 0 } }))), /ApiKey acme\/app: spec\.limits\.messagesPerHour: must be >= 1/);
  assert.throws(() => compileConfig(docs(apiKeyYaml('acme', 'app', key, { limits: { messagesPerMinute: 5 } }))), /limits.*messagesPerMinute/);
});
