// Finding a message's HTML parts by its boundaries (deliverer/tracking/html-parts.ts), checked
// against messages whose structure the test itself built: random trees of multiparts with
// preambles, epilogues, padded and missing close delimiters, boundaries that start with another
// part's boundary, attachments and forwarded messages. Python's email package reads a sample too,
// so the messages are valid MIME by a reader the code under test has nothing to do with.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import iconv from 'iconv-lite';
import { decode as qpDecode, encode as qpEncode, wrap as qpWrap } from 'libqp';
import { htmlParts, type HtmlPart } from '../../deliverer/tracking/html-parts.ts';
import { mimeParts } from '../helpers/mime-parts.ts';

/** A seeded generator, so a failing case can be run again. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Leaf = { kind: 'leaf'; type: string; encoding: string; charset: string; attachment: boolean; text: string };
type Multipart = { kind: 'multipart'; subtype: string; boundary: string; children: Part[]; preamble: string; epilogue: string; padding: string; closed: boolean };
type Forwarded = { kind: 'rfc822'; inner: Part };
type Part = Leaf | Multipart | Forwarded;

const WORDS = ['Grüße', 'price', 'sale', '<b>bold</b>', 'naïve', 'café', 'x=y', 'a--b', '<a href="https://shop.example/?a=1&amp;b=2">link</a>', 'line\r\nbreak'];

function encodeBody(leaf: Leaf): string {
  const bytes = iconv.encode(leaf.text, leaf.charset);
  if (leaf.encoding === 'base64') return bytes.toString('base64').replace(/.{76}(?=.)/g, '$&\r\n');
  if (leaf.encoding === 'quoted-printable') return qpWrap(qpEncode(bytes), 76);
  return bytes.toString('latin1');
}

function serialize(part: Part): string {
  if (part.kind === 'leaf') {
    const encodingName = part.encoding === 'quoted-printable' ? 'Quoted-Printable' : part.encoding; // names are case-insensitive
    return `Content-Type: ${part.type};\r\n charset="${part.charset}"\r\nContent-Transfer-Encoding: ${encodingName}\r\n`
      + (part.attachment ? 'Content-Disposition: attachment; filename="page.html"\r\n' : '')
      + `\r\n${encodeBody(part)}`;
  }
  if (part.kind === 'rfc822') return `Content-Type: message/rfc822\r\n\r\nSubject: forwarded\r\nMIME-Version: 1.0\r\n${serialize(part.inner)}`;
  const body = part.children.map((child) => `--${part.boundary}${part.padding}\r\n${serialize(child)}\r\n`).join('');
  return `Content-Type: multipart/${part.subtype}; boundary="${part.boundary}"\r\n\r\n${part.preamble}${body}`
    + (part.closed ? `--${part.boundary}--${part.padding}\r\n${part.epilogue}` : '');
}

function build(next: () => number, depth: number, boundary: string, last: boolean): Part {
  const pick = <T>(items: T[]) => items[Math.floor(next() * items.length)]!;
  const roll = next();
  if (depth < 3 && roll < 0.35) {
    const count = 1 + Math.floor(next() * 3);
    // A child's boundary starts with its parent's: the parent must not take the child's delimiters for its own.
    const children = Array.from({ length: count }, (_, i) => build(next, depth + 1, `${boundary}_${i}`, last && i === count - 1));
    return {
      kind: 'multipart', subtype: pick(['mixed', 'alternative', 'related']), boundary, children,
      preamble: pick(['', 'This is a multi-part message in MIME format.\r\n']),
      epilogue: pick(['', 'epilogue\r\n']),
      padding: pick(['', ' ', '\t ']),
      closed: !last || next() < 0.7, // only the message's last multipart may lack its close delimiter
    };
  }
  if (depth < 3 && roll < 0.45) return { kind: 'rfc822', inner: build(next, depth + 1, `${boundary}_f`, last) };
  const text = Array.from({ length: 5 + Math.floor(next() * 40) }, () => pick(WORDS)).join(' ');
  return {
    kind: 'leaf', type: pick(['text/html', 'text/html', 'text/plain']), encoding: pick(['quoted-printable', 'base64', '8bit']),
    charset: pick(['utf-8', 'iso-8859-1']), attachment: next() < 0.15, text: pick(['', '<p>']) + text.replace(/[^\x00-\xff]/g, 'x'),
  };
}

/** The HTML parts a reader shows as the message's text, in order: not attachments, not inside a forwarded message. */
function shownHtml(part: Part): Leaf[] {
  if (part.kind === 'rfc822') return [];
  if (part.kind === 'multipart') return part.children.flatMap(shownHtml);
  return part.type === 'text/html' && !part.attachment ? [part] : [];
}

function decoded(raw: Buffer, part: HtmlPart): string {
  const encoded = raw.toString('latin1', part.bodyStart, part.bodyEnd).replace(/(\r\n)+$/, '');
  const bytes = part.encoding === 'base64' ? Buffer.from(encoded, 'base64')
    : part.encoding === 'quoted-printable' ? qpDecode(encoded) : Buffer.from(encoded, 'latin1');
  return iconv.decode(bytes, part.charset ?? 'us-ascii');
}

function message(root: Part): Buffer {
  return Buffer.from(`From: shop@example.com\r\nTo: a@recipient.test\r\nSubject: Hi\r\nMIME-Version: 1.0\r\n${serialize(root)}`, 'latin1');
}

test('random MIME trees: exactly the HTML parts shown as text are found, each with its whole body, charset and encoding', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const root = build(random(seed), 0, `=_b${seed}`, true);
    const raw = message(root);
    const expected = shownHtml(root);
    const found = htmlParts(raw);
    assert.equal(found.length, expected.length, `seed ${seed}: ${found.length} HTML parts found, ${expected.length} built`);
    found.forEach((part, i) => {
      assert.equal(part.encoding, expected[i]!.encoding, `seed ${seed}, part ${i}`);
      assert.equal(part.charset, expected[i]!.charset, `seed ${seed}, part ${i}`);
      assert.equal(decoded(raw, part), expected[i]!.text, `seed ${seed}, part ${i}`);
    });
  }
});

test('the random messages are valid MIME to Python\'s email package, and it finds the same HTML', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const root = build(random(seed), 0, `=_b${seed}`, true);
    const { defects, parts } = mimeParts(message(root));
    assert.deepEqual(defects.filter((d) => d !== 'CloseBoundaryNotFoundDefect'), [], `seed ${seed}`);
    // Python enters forwarded messages; those parts are the original sender's and are not counted here.
    const python = parts.filter((p) => p.type === 'text/html' && p.disposition !== 'attachment').map((p) => p.text);
    const all = (part: Part): Leaf[] => part.kind === 'rfc822' ? all(part.inner) : part.kind === 'multipart' ? part.children.flatMap(all) : part.type === 'text/html' && !part.attachment ? [part] : [];
    assert.deepEqual(python, all(root).map((leaf) => leaf.text), `seed ${seed}`);
  }
});

test('what a part is: defaults without a header, multipart/digest, a multipart without a boundary, folded and upper-case fields', () => {
  const raw = (body: string) => Buffer.from(`Subject: x\r\n${body}`, 'latin1');
  // A part with no header block is text/plain; in a digest it is a message: neither is HTML.
  assert.deepEqual(htmlParts(raw('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n<a href="https://x.example/">x</a>\r\n--b--\r\n')), []);
  assert.deepEqual(htmlParts(raw('Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\n<p>x</p>\r\n--b--\r\n')), []);
  // A multipart without a boundary cannot be split: nothing in it is touched.
  assert.deepEqual(htmlParts(raw('Content-Type: multipart/mixed\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n')), []);
  const folded = raw('CONTENT-TYPE: Multipart/Alternative;\r\n\tboundary="b b"\r\n\r\n--b b\r\ncontent-type: TEXT/HTML;\r\n charset=ISO-8859-1\r\nContent-Transfer-Encoding: BASE64\r\n\r\nPHA+eDwvcD4=\r\n--b b--\r\n');
  const [part] = htmlParts(folded);
  assert.deepEqual({ ...part, body: folded.toString('latin1', part!.bodyStart, part!.bodyEnd) }, {
    bodyStart: part!.bodyStart, bodyEnd: part!.bodyEnd, encoding: 'base64', charset: 'ISO-8859-1', body: 'PHA+eDwvcD4=',
  });
  // A top-level HTML message: its body runs to the end.
  const single = raw('Content-Type: text/html\r\n\r\n<p>x</p>\r\n');
  assert.equal(single.toString('latin1', htmlParts(single)[0]!.bodyStart, htmlParts(single)[0]!.bodyEnd), '<p>x</p>\r\n');
});

test('a hostile structure stays linear: 200,000 header-less parts, or nesting 10,000 deep, end the walk instead of rescanning the message', () => {
  // Quadratic rescans of these messages would take minutes and hit the file's time limit.
  const many = Buffer.from(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${'--b\r\nx\r\n'.repeat(200_000)}--b--\r\n`, 'latin1');
  assert.deepEqual(htmlParts(many), []);
  let nested = 'Content-Type: text/html\r\n\r\n<a href="https://deep.example/">x</a>\r\n';
  for (let i = 0; i < 10_000; i++) nested = `Content-Type: multipart/mixed; boundary=n${i}\r\n\r\n--n${i}\r\n${nested}\r\n--n${i}--\r\n`;
  assert.deepEqual(htmlParts(Buffer.from(`Subject: deep\r\n${nested}`, 'latin1')), [], 'past the depth limit, nothing is tracked');
});
