// The CRDs as the real API server enforces them: `kubectl apply` of a bad resource is refused
// with a message that names the field and says what is wrong (OpenAPI schema and CEL rules).
// @needs k8s
// @limit 45s
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApiServer } from './api-server-fixture.ts';
import type { KubeApiServer } from '../k8s/api-server.ts';

let api: KubeApiServer;
before(async () => { api = await startTestApiServer('crd-validation'); });
after(async () => { await api?.stop(); });

function refusal(manifest: string): string {
  try {
    api.kubectl(['apply', '-f', '-'], manifest);
  } catch (error) {
    return (error as Error).message;
  }
  assert.fail(`kubectl apply was expected to fail for:\n${manifest}`);
}

const domain = (spec: string, name = 'example-com') =>
  `apiVersion: mtrelay.dev/v1alpha1\nkind: SendingDomain\nmetadata:\n  name: ${name}\n  namespace: default\nspec:\n${spec}`;
const apiKey = (spec: string) => `apiVersion: mtrelay.dev/v1alpha1\nkind: ApiKey\nmetadata:\n  name: app\n  namespace: default\nspec:\n${spec}`;
const webhook = (spec: string) => `apiVersion: mtrelay.dev/v1alpha1\nkind: Webhook\nmetadata:\n  name: hook\n  namespace: default\nspec:\n${spec}`;

describe('schema rules', () => {
  test('a domain that is not a DNS name', () => {
    const message = refusal(domain('  domain: "Not A Domain!"\n'));
    assert.match(message, /spec\.domain/);
    assert.match(message, /should match/);
  });

  test('an unknown permission', () => {
    const message = refusal(apiKey('  permissions: ["smtp/send", "admin/all"]\n'));
    assert.match(message, /spec\.permissions\[1\]/);
    assert.match(message, /Unsupported value: "admin\/all"/);
    assert.match(message, /"smtp\/send"/); // the allowed values are listed
  });

  test('an ApiKey without permissions', () => {
    assert.match(refusal(apiKey('  permissions: []\n')), /spec\.permissions.*(at least 1|should have at least)/);
  });

  test('a DKIM key size that is not offered', () => {
    assert.match(refusal(domain('  domain: example.com\n  dkim:\n    keySize: 1024\n')), /spec\.dkim\.keySize.*Unsupported value: 1024/);
  });

  test('an unknown field is refused by kubectl\'s server-side field validation', () => {
    assert.match(refusal(domain('  domain: example.com\n  dkimSelector: s1\n')), /unknown field "spec\.dkimSelector"/);
  });
});

describe('CEL rules', () => {
  test('spec.domain cannot be changed', () => {
    api.kubectl(['apply', '-f', '-'], domain('  domain: immutable.example\n', 'immutable'));
    const message = refusal(domain('  domain: other.example\n', 'immutable'));
    assert.match(message, /spec\.domain cannot be changed; create a new SendingDomain instead/);
    // Other fields stay editable.
    api.kubectl(['apply', '-f', '-'], domain('  domain: immutable.example\n  dkim:\n    selector: s2\n', 'immutable'));
  });

  test('a new DKIM key size needs a new selector', () => {
    api.kubectl(['apply', '-f', '-'], domain('  domain: sized.example\n', 'sized'));
    assert.match(refusal(domain('  domain: sized.example\n  dkim:\n    keySize: 4096\n', 'sized')),
      /changing spec\.dkim\.keySize needs a new spec\.dkim\.selector too/);
    api.kubectl(['apply', '-f', '-'], domain('  domain: sized.example\n  dkim:\n    keySize: 4096\n    selector: big\n', 'sized'));
  });

  test('a tracking domain equal to the sending domain', () => {
    assert.match(refusal(domain('  domain: example.com\n  trackingDomain: example.com\n')),
      /spec\.trackingDomain must be a host name of its own/);
  });

  test('a webhook on plain http without allowInsecureUrl', () => {
    const spec = '  url: http://hooks.example/events\n  events: [delivery]\n';
    assert.match(refusal(webhook(spec)), /spec\.url must be https:\/\/ unless spec\.allowInsecureUrl is true/);
    api.kubectl(['apply', '-f', '-'], webhook(`${spec}  allowInsecureUrl: true\n`));
  });

  test('AccountSettings: one per namespace, named default; its tracking domain a host name', () => {
    const settings = (name: string, spec: string) => `apiVersion: mtrelay.dev/v1alpha1\nkind: AccountSettings\nmetadata:\n  name: ${name}\n  namespace: default\nspec:\n${spec}`;
    assert.match(refusal(settings('mine', '  tracking: {opens: true}\n')), /an account has one AccountSettings, named default/);
    assert.match(refusal(settings('default', '  tracking: {domain: "https://track.example"}\n')), /spec\.tracking\.domain.*should match/);
    api.kubectl(['apply', '-f', '-'], settings('default', '  tracking: {opens: true, domain: track.example.com}\n'));
    assert.match(api.kubectl(['get', 'accountsettings', '-n', 'default']), /default\s+true\s+false\s+track\.example\.com/);
  });

  test('webhook auth other than none needs a secretRef; oauth2 needs an https token URL', () => {
    assert.match(refusal(webhook('  url: https://hooks.example/events\n  events: [bounce]\n  auth:\n    type: bearer\n')),
      /auth\.secretRef is required for basic, bearer and oauth2/);
    assert.match(refusal(webhook('  url: https://hooks.example/events\n  auth:\n    type: oauth2\n    secretRef: {name: creds}\n')),
      /auth\.tokenUrl is required for oauth2/);
    assert.match(refusal(webhook('  url: https://hooks.example/events\n  auth:\n    type: oauth2\n    secretRef: {name: creds}\n    tokenUrl: http://auth.example/token\n')),
      /spec\.auth\.tokenUrl must be https:\/\/ unless spec\.allowInsecureUrl is true/);
    api.kubectl(['apply', '-f', '-'], webhook('  url: https://hooks.example/events\n  auth:\n    type: oauth2\n    secretRef: {name: creds}\n    tokenUrl: https://auth.example/token\n  signing:\n    secretRef: {name: signing}\n'));
  });
});

test('kubectl get mtrelay lists every kind, with the printer columns', () => {
  api.kubectl(['apply', '-f', '-'], `${domain('  domain: listed.example\n', 'listed')}\n---\n${apiKey('  permissions: ["smtp/send"]\n  disabled: true\n')}`
    + `\n---\n${webhook('  url: https://hooks.example/events\n')}`);
  const output = api.kubectl(['get', 'mtrelay', '-n', 'default']);
  assert.match(output, /sendingdomain\.mtrelay\.dev\/listed/);
  assert.match(output, /apikey\.mtrelay\.dev\/app/);
  assert.match(output, /webhook\.mtrelay\.dev\/hook/);
  const domains = api.kubectl(['get', 'sd', '-n', 'default']);
  assert.match(domains.split('\n')[0] ?? '', /NAME\s+DOMAIN\s+READY\s+VERIFIED\s+AGE/);
});
