// Route resolution against a real DNS server on loopback.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RouteResolver, parseStaticRoute } from '../../deliverer/routes.ts';
import { TestDnsServer } from '../helpers/dns-server.ts';

const dns = new TestDnsServer();
let resolver: RouteResolver;

before(async () => {
  dns.set('two-mx.test', { MX: [{ exchange: 'backup.two-mx.test', priority: 20 }, { exchange: 'primary.two-mx.test', priority: 10 }] });
  dns.set('primary.two-mx.test', { A: ['127.0.0.2'] });
  dns.set('backup.two-mx.test', { A: ['127.0.0.3'], AAAA: ['::1'] });
  dns.set('implicit.test', { A: ['127.0.0.4'] });
  dns.set('null-mx.test', { MX: [{ exchange: '', priority: 0 }] });
  dns.set('broken.test', { servfail: true });
  dns.set('dangling.test', { MX: [{ exchange: 'nowhere.dangling.test', priority: 10 }] });
  const server = await dns.start();
  resolver = new RouteResolver({ dnsServers: [server], routes: new Map([parseStaticRoute('routed.test=127.0.0.9:2525')]), timeoutMs: 1000 });
});
after(() => dns.stop());

test('MX hosts in preference order, each with its addresses', async () => {
  assert.deepEqual(await resolver.resolve('two-mx.test'), { kind: 'hops', hops: [
    { name: 'primary.two-mx.test', addresses: ['127.0.0.2'], port: 25 },
    { name: 'backup.two-mx.test', addresses: ['127.0.0.3', '::1'], port: 25 },
  ] });
});

test('no MX: the domain\'s own address (implicit MX); null MX and NXDOMAIN are permanent', async () => {
  assert.deepEqual(await resolver.resolve('implicit.test'), { kind: 'hops', hops: [{ name: 'implicit.test', addresses: ['127.0.0.4'], port: 25 }] });
  assert.deepEqual(await resolver.resolve('null-mx.test'), { kind: 'permanent', reply: 'NULL_MX', line: '550 5.1.10 Domain null-mx.test accepts no mail (null MX, RFC 7505)' });
  assert.deepEqual(await resolver.resolve('absent.test'), { kind: 'permanent', reply: 'DOMAIN_NOT_FOUND', line: '550 5.1.2 Domain absent.test does not exist (NXDOMAIN)' });
});

test('SERVFAIL and MX hosts without addresses are temporary', async () => {
  assert.deepEqual(await resolver.resolve('broken.test'), { kind: 'temporary', reply: 'DNS_LOOKUP_FAILED', line: '451 4.4.3 DNS lookup of MX broken.test failed: ESERVFAIL' });
  dns.set('implicit-broken.test', { servfailAddresses: true });
  assert.deepEqual(await resolver.resolve('implicit-broken.test'), { kind: 'temporary', reply: 'DNS_LOOKUP_FAILED', line: '451 4.4.3 DNS lookup of A/AAAA implicit-broken.test failed: ESERVFAIL' },
    'a failing A lookup is never a bounce');
  assert.deepEqual(await resolver.resolve('dangling.test'), { kind: 'temporary', reply: 'MX_HOSTS_UNRESOLVED', line: '451 4.4.3 No MX host of dangling.test has an address' });
});

test('static routes win over DNS, and * catches every domain', async () => {
  assert.deepEqual(await resolver.resolve('routed.test'), { kind: 'hops', hops: [{ name: '127.0.0.9', addresses: ['127.0.0.9'], port: 2525 }] });
  assert.throws(() => parseStaticRoute('nonsense'), /expected DOMAIN=HOST:PORT/);
  assert.deepEqual(parseStaticRoute('*=[::1]:25'), ['*', { host: '::1', port: 25 }]);
});
