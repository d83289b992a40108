// Route resolution against a real DNS server on loopback, and the destination policy that keeps
// the deliverer out of loopback, private and link-local networks (no SSRF through MX records).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DestinationPolicy, parseCidr } from '../../deliverer/destination-policy.ts';
import { RouteResolver, parseStaticRoute } from '../../deliverer/routes.ts';
import { TestDnsServer } from '../helpers/dns-server.ts';

const dns = new TestDnsServer();
let resolver: RouteResolver;
let server: string;
/** The test's hosts are on loopback: this resolver allows it, as a test set-up must. */
const LOOPBACK = new DestinationPolicy({ allow: ['127.0.0.0/8', '::1/128'] });

before(async () => {
  dns.set('two-mx.test', { MX: [{ exchange: 'backup.two-mx.test', priority: 20 }, { exchange: 'primary.two-mx.test', priority: 10 }] });
  dns.set('primary.two-mx.test', { A: ['127.0.0.2'] });
  dns.set('backup.two-mx.test', { A: ['127.0.0.3'], AAAA: ['::1'] });
  dns.set('implicit.test', { A: ['127.0.0.4'] });
  dns.set('null-mx.test', { MX: [{ exchange: '', priority: 0 }] });
  dns.set('broken.test', { servfail: true });
  dns.set('dangling.test', { MX: [{ exchange: 'nowhere.dangling.test', priority: 10 }] });
  server = await dns.start();
  resolver = new RouteResolver({ dnsServers: [server], routes: new Map([parseStaticRoute('routed.test=127.0.0.9:2525')]), timeoutMs: 1000, destinations: LOOPBACK });
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
  assert.deepEqual(await resolver.resolve('null-mx.test'), { kind: 'permanent', reply: 'NULL_MX', line: '550 5.1.10 Domain null-mx.test accepts no mail (null MX, RFC 7505)', bounceClass: 10 });
  assert.deepEqual(await resolver.resolve('absent.test'), { kind: 'permanent', reply: 'DOMAIN_NOT_FOUND', line: '550 5.1.2 Domain absent.test does not exist (NXDOMAIN)', bounceClass: 10 });
});

test('SERVFAIL and MX hosts without addresses are temporary', async () => {
  assert.deepEqual(await resolver.resolve('broken.test'), { kind: 'temporary', reply: 'DNS_LOOKUP_FAILED', line: '451 4.4.3 DNS lookup of MX broken.test failed: ESERVFAIL', bounceClass: 21 });
  dns.set('implicit-broken.test', { servfailAddresses: true });
  assert.deepEqual(await resolver.resolve('implicit-broken.test'), { kind: 'temporary', reply: 'DNS_LOOKUP_FAILED', line: '451 4.4.3 DNS lookup of A/AAAA implicit-broken.test failed: ESERVFAIL', bounceClass: 21 },
    'a failing A lookup is never a bounce');
  assert.deepEqual(await resolver.resolve('dangling.test'), { kind: 'temporary', reply: 'MX_HOSTS_UNRESOLVED', line: '451 4.4.3 No MX host of dangling.test has an address', bounceClass: 21 });
});

test('static routes win over DNS, and * catches every domain', async () => {
  assert.deepEqual(await resolver.resolve('routed.test'), { kind: 'hops', hops: [{ name: '127.0.0.9', addresses: ['127.0.0.9'], port: 2525 }], static: true });
  assert.throws(() => parseStaticRoute('nonsense'), /expected DOMAIN=HOST:PORT/);
  assert.deepEqual(parseStaticRoute('*=[::1]:25'), ['*', { host: '::1', port: 25 }]);
});

test('by default, addresses in loopback, private, link-local, shared and reserved ranges are never hops; a domain with only those bounces (class 25)', async () => {
  const strict = new RouteResolver({ dnsServers: [server], timeoutMs: 1000 });
  dns.set('internal.test', { MX: [{ exchange: 'metadata.internal.test', priority: 10 }, { exchange: 'pods.internal.test', priority: 20 }] });
  dns.set('metadata.internal.test', { A: ['169.254.169.254'], AAAA: ['fe80::1'] });
  dns.set('pods.internal.test', { A: ['10.244.0.7', '172.17.0.2', '192.168.1.1', '100.64.0.1', '127.0.0.1'], AAAA: ['fd00::1', '::1'] });
  assert.deepEqual(await strict.resolve('internal.test'), { kind: 'permanent', reply: 'INTERNAL_DESTINATION', bounceClass: 25,
    line: '550 5.7.1 Domain internal.test resolves only to addresses mtrelay does not deliver to: 169.254.169.254, fe80::1, 10.244.0.7, 172.17.0.2, 192.168.1.1, 100.64.0.1, 127.0.0.1, fd00::1, ::1' });
  // A public address beside them is kept; the refused ones are dropped from the hop.
  dns.set('mixed.test', { A: ['10.0.0.5', '93.184.215.14'] });
  assert.deepEqual(await strict.resolve('mixed.test'), { kind: 'hops', hops: [{ name: 'mixed.test', addresses: ['93.184.215.14'], port: 25 }] });
  // The implicit MX of a domain on loopback, as any MX.
  assert.equal((await strict.resolve('implicit.test') as { reply?: string }).reply, 'INTERNAL_DESTINATION');
});

test('--allow-destination opens a range, --refuse-destination closes one more; static routes are the operator\'s and not checked', async () => {
  dns.set('allowed.test', { A: ['10.1.2.3', '10.9.9.9'] });
  dns.set('public.test', { A: ['93.184.215.14'] });
  const policy = new DestinationPolicy({ allow: ['10.1.0.0/16'], refuse: ['93.184.0.0/16'] });
  const custom = new RouteResolver({ dnsServers: [server], timeoutMs: 1000, destinations: policy, routes: new Map([parseStaticRoute('smarthost.test=127.0.0.1:2525')]) });
  assert.deepEqual(await custom.resolve('allowed.test'), { kind: 'hops', hops: [{ name: 'allowed.test', addresses: ['10.1.2.3'], port: 25 }] });
  assert.equal((await custom.resolve('public.test') as { reply?: string }).reply, 'INTERNAL_DESTINATION');
  assert.deepEqual(await custom.resolve('smarthost.test'), { kind: 'hops', hops: [{ name: '127.0.0.1', addresses: ['127.0.0.1'], port: 2525 }], static: true });
  // IPv4-mapped and IPv4-compatible IPv6 spellings of loopback are loopback.
  assert.deepEqual(['::ffff:127.0.0.1', '::ffff:7f00:1', '::127.0.0.1', '::ffff:10.0.0.1'].map((a) => new DestinationPolicy().permits(a)), [false, false, false, false]);
  // A range refused on purpose inside an allowed one stays refused.
  const nested = new DestinationPolicy({ allow: ['10.0.0.0/8'], refuse: ['10.96.0.0/12'] });
  assert.deepEqual(['10.1.2.3', '10.96.0.10'].map((a) => nested.permits(a)), [true, false]);
  // An MX host that resolves to nothing yet (DNS settling) keeps the outcome temporary, beside one refused.
  dns.set('half.test', { MX: [{ exchange: 'inside.half.test', priority: 10 }, { exchange: 'missing.half.test', priority: 20 }] });
  dns.set('inside.half.test', { A: ['10.0.0.9'] });
  assert.equal((await new RouteResolver({ dnsServers: [server], timeoutMs: 1000 }).resolve('half.test') as { reply?: string }).reply, 'MX_HOSTS_UNRESOLVED');
  assert.throws(() => new DestinationPolicy({ allow: ['10.0.0.0/33'] }), /invalid address range "10\.0\.0\.0\/33"/);
  assert.throws(() => parseCidr('example.com/8'), /expected ADDRESS\/PREFIX/);
});

test('an address literal is delivered only where a static route covers it', async () => {
  assert.deepEqual(await resolver.resolve('[127.0.0.2]'), { kind: 'permanent', reply: 'ADDRESS_LITERAL_REFUSED', bounceClass: 25,
    line: '550 5.7.1 Recipient domain [127.0.0.2] is an address literal; mail goes to domain names only' });
  const routed = new RouteResolver({ dnsServers: [server], timeoutMs: 1000, routes: new Map([parseStaticRoute('[127.0.0.2]=127.0.0.2:2525')]) });
  assert.deepEqual(await routed.resolve('[127.0.0.2]'), { kind: 'hops', hops: [{ name: '127.0.0.2', addresses: ['127.0.0.2'], port: 2525 }], static: true });
});
