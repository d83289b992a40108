// Open and click tracking on the bytes: HTML parts in quoted-printable, base64, 7bit, in
// UTF-8, ISO-8859-1, ISO-2022-JP and UTF-16, nested in multiparts, with links in every
// attribute form. Python's email package reads every result, so validity is not judged by the
// code that wrote it.
// @needs dkimpy
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import Encoding from 'encoding-japanese';
import iconv from 'iconv-lite';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { fillTemplate, type TrackingUrls } from '../../deliverer/tracking/fill-template.ts';
import { trackingTemplate } from '../../deliverer/tracking/mime-template.ts';
import { headerBlockEnd } from '../../shared/mail/headers.ts';
import { mimeParts, type MimePart } from '../helpers/mime-parts.ts';

/** Tracked URLs that name their target, so a test can tell where each link now goes. */
const urls: TrackingUrls = {
  link: (target) => `https://t.test/c/${Buffer.from(target).toString('base64url')}`,
  pixel: (which) => `https://t.test/o/${which}.gif`,
};

function compose(mail: ConstructorParameters<typeof MailComposer>[0]): Promise<Buffer> {
  return new MailComposer({ from: 'shop@example.com', to: 'a@recipient.test', subject: 'Hi', ...mail }).compile().build();
}

/** The whole message one recipient receives: the original header block and the tracked body. */
async function tracked(raw: Buffer, options = { opens: true, clicks: true }): Promise<Buffer> {
  const template = trackingTemplate(raw, options);
  assert.ok(template, 'the message has something to track');
  return Buffer.concat([raw.subarray(0, headerBlockEnd(raw)), fillTemplate(template, urls)]);
}

/** Where the HTML's links now go: tracked targets decoded, others as written. */
function links(html: string): string[] {
  return [...html.matchAll(/href="([^"]*)"/gi)].map(([, href]) => (href!.startsWith('https://t.test/c/')
    ? `tracked:${Buffer.from(href!.slice('https://t.test/c/'.length), 'base64url').toString()}`
    : href!));
}

function htmlPart(parts: MimePart[]): MimePart {
  const html = parts.filter((p) => p.type === 'text/html' && p.disposition !== 'attachment');
  assert.equal(html.length, 1);
  return html[0]!;
}

function assertCleanLines(message: Buffer): void {
  const text = message.toString('latin1');
  assert.doesNotMatch(text, /[^\r]\n|\r[^\n]/, 'every line ends in CRLF');
  const longest = Math.max(...text.split('\r\n').map((l) => l.length));
  assert.ok(longest <= 998, `a line is ${longest} characters long`);
}

/** A message of the corpus in test/fixtures/tracking/ (CRLF line endings, as the relay stores mail). */
const fixture = (name: string) => readFileSync(new URL(`../fixtures/tracking/${name}`, import.meta.url));

test('quoted-printable UTF-8 HTML: every http(s) link in every attribute form tracked, everything else as written, pixels at top and bottom', async () => {
  const message = await tracked(fixture('qp-utf8-links.eml'));
  assertCleanLines(message);
  const { defects, parts } = mimeParts(message);
  assert.deepEqual(defects, []);
  assert.equal(parts.find((p) => p.type === 'text/plain')!.text, 'Plain text stays https://plain.example/ as it is.\r\n');
  const html = htmlPart(parts);
  assert.equal(html.cte, 'quoted-printable');
  assert.deepEqual(links(html.text!), [
    'tracked:https://shop.example/a?x=1&y=2', 'tracked:http://shop.example/b', 'tracked:https://shop.example/c', 'tracked:https://shop.example/d',
    'mailto:help@example.com', 'tel:+4930123', '#top', '/relative', 'https://shop.example/keep',
    'https://comment.example/', 'https://script.example/', 'tracked:https://shop.example/area', 'tracked:https://shop.example/%C3%BC?q=%C3%A4',
  ]);
  assert.match(html.text!, /title="href=https:\/\/not\.a\.link\/"/);
  assert.match(html.text!, /<p>Grüße aus Köln<\/p>/);
  assert.match(html.text!, /<body class="main">\r\n<img [^>]*src="https:\/\/t\.test\/o\/initial_open\.gif">\r\n<p>/);
  assert.match(html.text!, /<\/map>\r\n<a [^\r]*\r\n\r\n<img [^>]*src="https:\/\/t\.test\/o\/open\.gif">\r\n<\/body><\/html>(\r\n)?$/);
});

test('opens only: pixels, links untouched; clicks only: links, no pixel; neither to track: no template', async () => {
  const raw = fixture('qp-utf8-links.eml');
  const opens = htmlPart(mimeParts(await tracked(raw, { opens: true, clicks: false })).parts).text!;
  assert.equal(links(opens).filter((l) => l.startsWith('tracked:')).length, 0);
  assert.match(opens, /initial_open\.gif[\s\S]*open\.gif/);
  const clicks = htmlPart(mimeParts(await tracked(raw, { opens: false, clicks: true })).parts).text!;
  assert.equal(links(clicks).filter((l) => l.startsWith('tracked:')).length, 6);
  assert.doesNotMatch(clicks, /\.gif/);
  assert.equal(trackingTemplate(await compose({ text: 'only text https://x.example/' }), { opens: true, clicks: true }), undefined);
  assert.equal(trackingTemplate(await compose({ html: '<p>no links</p>' }), { opens: false, clicks: true }), undefined);
});

test('base64 ISO-8859-1 HTML nested in multipart/alternative inside multipart/mixed; an HTML attachment and an image untouched', async () => {
  const attachedHtml = '<a href="https://attached.example/">not a body part</a>';
  const raw = fixture('nested-latin1-base64.eml');
  assert.match(raw.toString(), /multipart\/mixed[\s\S]*multipart\/alternative/);
  const message = await tracked(raw);
  assertCleanLines(message);
  const { defects, parts } = mimeParts(message);
  assert.deepEqual(defects, []);
  assert.deepEqual(parts.map((p) => [p.type, p.disposition]), [['text/plain', null], ['text/html', null], ['text/html', 'attachment'], ['image/png', 'attachment']]);
  const body = htmlPart(parts);
  assert.equal(body.cte, 'base64');
  assert.equal(body.charset, 'iso-8859-1');
  assert.match(body.text!, /<p>Café crème<\/p>/);
  assert.deepEqual(links(body.text!), ['tracked:https://shop.example/caf%C3%A9']);
  assert.equal(parts[2]!.text, attachedHtml);
  assert.equal(parts[3]!.bytes, 70);
  // Everything but the HTML body part is byte for byte what the sender wrote.
  const outside = (m: Buffer) => m.toString('latin1').replace(/Content-Type: text\/html; charset=iso-8859-1[\s\S]*?(?=\r\n--)/, '');
  assert.equal(outside(message), outside(raw));
});

test('ISO-2022-JP: two-byte runs that look like tags are not touched; the Japanese text reads the same', async () => {
  // ESC $ B switches to JIS X 0208, where the bytes "<a" and "4A" are two kanji.
  const japanese = '\x1b$B<a4A\x1b(B';
  const raw = fixture('iso-2022-jp.eml');
  const message = await tracked(raw, { opens: false, clicks: true });
  assertCleanLines(message);
  const [part] = mimeParts(message).parts;
  const expectedText = Encoding.convert(Encoding.stringToCode(japanese), { to: 'UNICODE', from: 'JIS' });
  assert.equal(part!.text, `<html><body><p>${Encoding.codeToString(expectedText)} href="https://jis.example/"</p><a href="https://t.test/c/${Buffer.from('https://shop.example/jp').toString('base64url')}">${Encoding.codeToString(expectedText)}</a></body></html>\r\n`);
});

test('UTF-16 HTML in base64 is decoded, rewritten and encoded again; in quoted-printable it is left untracked', async () => {
  const base64 = await tracked(fixture('utf16-base64.eml'), { opens: false, clicks: true });
  assert.deepEqual(links(mimeParts(base64).parts[0]!.text!), ['tracked:https://shop.example/16']);
  const html = '<html><body><a href="https://shop.example/16">Ünïcode</a></body></html>';
  const part = (cte: string, content: string) => Buffer.from(['From: shop@example.com', 'To: a@recipient.test', 'MIME-Version: 1.0',
    'Content-Type: text/html; charset=utf-16', `Content-Transfer-Encoding: ${cte}`, '', content, ''].join('\r\n'), 'latin1');
  const qp = iconv.encode(html, 'utf-16le').toString('latin1').replace(/[^\x21-\x3c\x3e-\x7e]/g, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  assert.equal(trackingTemplate(part('quoted-printable', qp.replace(/(.{72})/g, '$1=\r\n')), { opens: false, clicks: true }), undefined);
});

test('7bit HTML stays within 998 characters a line: long tracked links move to a line of their own inside the tag', async () => {
  const line = Array.from({ length: 4 }, (_, i) => `<a class="c" href="https://shop.example/${'p'.repeat(150)}/${i}">${i}</a>`).join(' ');
  assert.ok(line.length < 998);
  const raw = Buffer.from(['From: shop@example.com', 'To: a@recipient.test', 'MIME-Version: 1.0', 'Content-Type: text/html; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit', '', `<html><body>${line}</body></html>`, ''].join('\r\n'));
  const message = await tracked(raw, { opens: false, clicks: true });
  assertCleanLines(message);
  const text = mimeParts(message).parts[0]!.text!;
  assert.deepEqual(links(text), Array.from({ length: 4 }, (_, i) => `tracked:https://shop.example/${'p'.repeat(150)}/${i}`));
  assert.match(text, /<a class="c"\r\nhref="https:\/\/t\.test\/c\//);
});

test('what is not HTML is passed through byte for byte, whatever the tracking', async () => {
  const raw = await compose({ text: 'text', html: '<a href="https://x.example/">x</a>', attachments: [{ filename: 'a.txt', content: 'attached https://y.example/' }] });
  const template = trackingTemplate(raw, { opens: true, clicks: true })!;
  const passThrough = template.pieces.filter((p) => Buffer.isBuffer(p)).map((p) => p.toString('latin1')).join('');
  // The HTML part's content is the template's to write.
  const withoutHtml = raw.toString('latin1', headerBlockEnd(raw)).replace(/(Content-Type: text\/html[^\r]*\r\n(?:[^\r]+\r\n)*\r\n)[\s\S]*?(?=\r\n--)/, '$1');
  assert.equal(passThrough, withoutHtml);
});
