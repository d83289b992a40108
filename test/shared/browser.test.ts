// The test browser (test/helpers/browser.ts): a real Chromium loads a page's images and follows a clicked link through a redirect.
// @needs chromium
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { clickLink, openHtml, withBrowser } from '../helpers/browser.ts';

// The smallest transparent GIF: 1x1 pixel.
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

test('Chromium loads an image and follows a link through a 302', async (t) => {
  const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    seen.push({ path, headers: req.headers });
    if (path === '/pixel.gif') res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store' }).end(PIXEL);
    else if (path === '/go') res.writeHead(302, { location: '/landed' }).end();
    // An icon of its own, or Chromium asks for /favicon.ico after the page has loaded.
    else if (path === '/landed') res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><link rel="icon" href="data:,"><title>landed</title><p>You are here.</p>');
    else res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  await withBrowser(async (browser) => {
    const page = await openHtml(browser, `<!doctype html><p>Hello</p><img src="${origin}/pixel.gif" alt=""><a id="l" href="${origin}/go">read more</a>`);
    const pixels = seen.filter((r) => r.path === '/pixel.gif');
    assert.equal(pixels.length, 1, 'the image was fetched once');
    assert.match(pixels[0]?.headers['user-agent'] ?? '', /Chrome\/\d+/);

    assert.equal(await clickLink(page, '#l'), `${origin}/landed`);
    assert.equal(await page.title(), 'landed');
  });
  assert.deepEqual(seen.map((r) => r.path), ['/pixel.gif', '/go', '/landed']);
});
