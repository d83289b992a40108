// Which opens and clicks are flagged as a machine's, and why (tracker/machine-requests.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { machineReason } from '../../tracker/machine-requests.ts';

const DESKTOP_CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';

test('readers, and the image proxies that fetch when a reader opens, are not flagged', () => {
  assert.equal(machineReason({ ip: '198.51.100.7', userAgent: DESKTOP_CHROME }), undefined);
  assert.equal(machineReason({ ip: '66.249.84.1', userAgent: 'Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)' }), undefined);
  assert.equal(machineReason({ ip: '203.0.113.9', userAgent: 'YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html' }), undefined);
  // The bare agent outside Apple's network is not enough to call it Apple's prefetch.
  assert.equal(machineReason({ ip: '198.51.100.7', userAgent: 'Mozilla/5.0' }), undefined);
});

test("Apple Mail Privacy Protection's prefetch: the bare agent from Apple's network, over IPv4 or mapped IPv6", () => {
  assert.equal(machineReason({ ip: '17.58.100.1', userAgent: 'Mozilla/5.0' }), 'apple_privacy_proxy');
  assert.equal(machineReason({ ip: '::ffff:17.58.100.1', userAgent: 'Mozilla/5.0' }), 'apple_privacy_proxy');
});

test('link scanners, headless browsers and HTTP libraries', () => {
  assert.equal(machineReason({ ip: '40.94.1.1', userAgent: 'Mozilla/5.0 (compatible; Microsoft SafeLinks)' }), 'link_scanner');
  assert.equal(machineReason({ ip: '1.2.3.4', userAgent: 'Mozilla/5.0 (compatible; Barracuda Sentinel)' }), 'link_scanner');
  assert.equal(machineReason({ ip: '1.2.3.4', userAgent: 'Mozilla/5.0 (compatible; bingbot/2.0)' }), 'link_scanner');
  assert.equal(machineReason({ ip: '1.2.3.4', userAgent: 'Mozilla/5.0 (compatible; Googlebot/2.1)' }), 'link_scanner');
  assert.equal(machineReason({ ip: '1.2.3.4', userAgent: 'Mozilla/5.0 (compatible; crawler)' }), 'link_scanner');
  assert.equal(machineReason({ ip: '1.2.3.4', userAgent: DESKTOP_CHROME.replace('Chrome/', 'HeadlessChrome/') }), 'headless_browser');
  assert.equal(machineReason({ ip: '1.2.3.4', userAgent: 'curl/8.5.0' }), 'http_library');
  assert.equal(machineReason({ ip: '1.2.3.4', userAgent: 'python-requests/2.31' }), 'http_library');
  assert.equal(machineReason({ ip: '1.2.3.4', userAgent: '' }), 'http_library');
});
