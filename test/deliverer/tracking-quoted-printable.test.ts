// Quoted-printable parts are tracked by splicing into the sender's encoded text: the decoder
// that keeps positions reads what libqp reads, and whatever the line length and wherever the
// soft line breaks fall (inside attributes, inside URLs), the spliced part decodes to the
// tracked HTML and keeps every line within 76 characters.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { test } from 'node:test';
import { decode as qpDecode, encode as qpEncode, wrap as qpWrap } from 'libqp';
import { fillTemplate, pixelTag, type TrackingUrls } from '../../deliverer/tracking/fill-template.ts';
import { trackingTemplate } from '../../deliverer/tracking/mime-template.ts';
import { decodeWithPositions } from '../../deliverer/tracking/quoted-printable.ts';

const urls: TrackingUrls = {
  link: (target) => `https://t.test/c/${Buffer.from(target).toString('base64url')}`,
  pixel: (which) => `https://t.test/o/${which}.gif`,
};

test('the position-keeping decoder reads what libqp reads, and points each byte at its encoding', () => {
  const samples = ['a=3Db', 'soft=\r\nbreak', 'lf soft=\nbreak', 'pad   \r\nnext', 'tab\t\r\nx', 'end  ', 'odd = sign', 'lower=3d=c3=a9', '=\r\n', '==41', 'x=4'];
  for (let i = 0; i < 200; i++) {
    const text = randomBytes(randomInt(0, 300)).toString('latin1').replace(/[\r\n]/g, (c) => (c === '\n' ? '\r\n' : ' '));
    samples.push(qpWrap(qpEncode(Buffer.from(text, 'latin1')), randomInt(10, 77)));
  }
  for (const encoded of samples) {
    const decoded = decodeWithPositions(encoded);
    assert.equal(decoded.text, qpDecode(encoded).toString('latin1'), JSON.stringify(encoded));
    for (let j = 0; j < decoded.text.length; j++) {
      const at = decoded.at[j]!;
      const char = decoded.text.charCodeAt(j);
      assert.ok(encoded.charCodeAt(at) === char || (encoded[at] === '=' && parseInt(encoded.slice(at + 1, at + 3), 16) === char), `${JSON.stringify(encoded)} @${j}`);
    }
  }
});

function randomHtml(): { html: string; targets: string[] } {
  const targets: string[] = [];
  const parts = ['<html><body class="x">'];
  for (let i = 0; i < randomInt(1, 8); i++) {
    const target = `https://shop.example/${'p'.repeat(randomInt(1, 120))}/${i}?a=1&b=${i}`;
    targets.push(target);
    parts.push(`${'word '.repeat(randomInt(0, 30))}<a class="c${i}"${i % 2 ? '\n' : ' '}href="${target.replace(/&/g, '&amp;')}">link ${i}</a>${i % 3 ? '\r\n' : ' '}Grüße`);
  }
  // A blank right before </body>, where the open pixel goes: it must survive (not read as padding).
  parts.push(randomInt(2) ? ' </body></html>' : '</body></html>');
  return { html: parts.join(''), targets };
}

test('spliced into the encoded text, whatever the line length: decodes to the tracked HTML, lines within 76, the rest as the sender encoded it', async () => {
  for (let round = 0; round < 60; round++) {
    const { html, targets } = randomHtml();
    const lineLength = randomInt(20, 77);
    const encodedHtml = qpWrap(qpEncode(Buffer.from(html.replace(/\r?\n/g, '\r\n'), 'utf8')), lineLength);
    const raw = Buffer.from(['From: a@example.com', 'To: b@x.test', 'MIME-Version: 1.0', 'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable', '', encodedHtml, ''].join('\r\n'), 'latin1');
    const template = trackingTemplate(raw, { opens: true, clicks: true })!;
    const part = fillTemplate(template, urls).toString('latin1').slice(2);
    for (const line of part.split('\r\n')) assert.ok(line.length <= 76, `a line of ${line.length}: ${line}`);
    const decoded = qpDecode(part).toString('utf8');
    const expected = html.replace(/\r?\n/g, '\r\n')
      .replace(/(\s+)href="([^"]*)"/g, (_, space: string, href: string) => `${space}href="${urls.link(href.replace(/&amp;/g, '&'))}"`)
      .replace('<body class="x">', `<body class="x">\r\n${pixelTag(urls.pixel('initial_open'))}\r\n`)
      .replace('</body>', `\r\n${pixelTag(urls.pixel('open'))}\r\n</body>`) + '\r\n'; // the line break that ends the message
    assert.equal(decoded, expected);
    assert.equal(targets.length, (decoded.match(/t\.test\/c\//g) ?? []).length);
    // The sender's text is kept as encoded, not encoded again: a wrap cannot split a word that was whole.
    const whole = (text: string) => text.split('\r\n').filter((l) => !l.endsWith('=')).length;
    assert.ok(whole(part) >= whole(encodedHtml), 'hard line breaks of the sender are all still there');
  }
});

test('a megabyte of blanks inside a line decodes in one pass, every blank kept (not padding)', () => {
  const encoded = `<p>${' '.repeat(1024 * 1024)}x</p>`;
  const decoded = decodeWithPositions(encoded);
  assert.equal(decoded.text, encoded);
  assert.equal(decoded.at[1024 * 1024 + 3], 1024 * 1024 + 3);
});
