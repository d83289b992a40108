// The CRDs: well-formed, in the mtrelay category, and their OpenAPI schemas accept the
// example resources and refuse what the config schemas refuse. (CEL rules need a real API
// server; they are checked by the operator's tests.)
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse, parseAllDocuments } from 'yaml';

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;
const dir = new URL('../../crds/', import.meta.url);

interface Crd {
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; categories?: string[]; shortNames?: string[] };
    versions: { name: string; served: boolean; storage: boolean; subresources?: { status?: object }; schema: { openAPIV3Schema: object } }[];
  };
}

const crds: Crd[] = readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => parse(readFileSync(new URL(f, dir), 'utf8')) as Crd);
// Kubernetes' extensions (x-kubernetes-*) mean nothing to ajv; everything else is plain OpenAPI v3.
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
const validator = (kind: string) => ajv.compile(crds.find((c) => c.spec.names.kind === kind)!.spec.versions[0]!.schema.openAPIV3Schema);

test('SendingDomain, ApiKey, Webhook and AccountSettings: mtrelay.dev/v1alpha1, namespaced, status subresource (settings have none), category mtrelay', () => {
  assert.deepEqual(crds.map((c) => c.spec.names.kind).sort(), ['AccountSettings', 'ApiKey', 'SendingDomain', 'Webhook']);
  for (const crd of crds) {
    assert.equal(crd.spec.group, 'mtrelay.dev');
    assert.equal(crd.metadata.name, `${crd.spec.names.kind.toLowerCase().replace(/s?$/, 's')}.mtrelay.dev`);
    assert.deepEqual(crd.spec.names.categories, ['mtrelay']);
    assert.ok(crd.spec.names.shortNames?.length);
    const [version] = crd.spec.versions;
    assert.equal(version!.name, 'v1alpha1');
    assert.ok(version!.served && version!.storage);
    // Settings are only what the account wrote; the others report what mtrelay made of them.
    assert.equal(Boolean(version!.subresources?.status), crd.spec.names.kind !== 'AccountSettings');
  }
});

test('the example resources are valid; typical mistakes are not', () => {
  const examples = ['sending-domain.yaml', 'api-key.yaml', 'account-settings.yaml', 'webhook.yaml'].flatMap((f) =>
    parseAllDocuments(readFileSync(new URL(`../../examples/resources/${f}`, import.meta.url), 'utf8')).map((d) => d.toJS() as { kind: string }));
  for (const resource of examples.filter((r) => r.kind !== 'Secret')) {
    const validate = validator(resource.kind);
    assert.ok(validate(resource), `${resource.kind}: ${JSON.stringify(validate.errors)}`);
  }
  assert.equal(validator('SendingDomain')({ spec: { domain: 'Example.COM' } }), false, 'upper case domain');
  assert.equal(validator('ApiKey')({ spec: { permissions: ['smtp/fly'] } }), false, 'unknown permission');
  assert.equal(validator('ApiKey')({ spec: { permissions: [] } }), false, 'no permission');
  assert.equal(validator('Webhook')({ spec: { url: 'ftp://x' } }), false, 'not http(s)');
});
