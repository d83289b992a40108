// HTML newsletters for the tracking runs of the end-to-end benchmark: what open and click
// tracking rewrites in production. multipart/alternative with a short text part and an HTML
// part in quoted-printable (as ESPs and nodemailer send it: every `=` of the markup becomes
// `=3D`, lines are cut at 76 characters), laid out with nested tables and inline styles, and
// exactly TRACKED_LINKS http(s) links (logo, navigation, a hero, article titles and buttons with
// UTM parameters written `&amp;`, social links, view-online, preferences, unsubscribe), plus a
// mailto: link and an anchor that tracking leaves alone. The article text is random words, so
// every message's body is its own; its length brings the message to about the size asked.
import { randomBytes, randomInt } from 'node:crypto';
import { encode as qpEncode, wrap as qpWrap } from 'libqp';
import { WORDS } from './message.ts';

/** The http(s) links of every message, each one a click tracking rewrites. */
export const TRACKED_LINKS = 20;
const ARTICLES = 4;
const SITE = 'https://www.acme-shop.example';
const CDN = 'https://cdn.acme-shop.example/nl/2026-48';

function words(bytes: number): string {
  let text = '';
  while (text.length < bytes) text += `${text ? ' ' : ''}${WORDS[randomInt(WORDS.length)]}`;
  return text;
}

const utm = (content: string) => `utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=weekly-48&amp;utm_content=${content}`;
const button = (href: string, label: string) =>
  `<a href="${href}" style="display:inline-block;padding:12px 24px;border-radius:4px;background-color:#d9480f;color:#ffffff;text-decoration:none;font-weight:bold;">${label}</a>`;

function article(n: number, paragraph: string): string {
  const href = `${SITE}/stories/${2026480 + n}?${utm(`article-${n}`)}`;
  return [
    '<tr><td style="padding:24px 32px 8px 32px;">',
    `<img src="${CDN}/article-${n}.jpg" width="536" height="240" alt="" style="display:block;width:100%;height:auto;border:0;">`,
    `<h2 style="margin:16px 0 8px 0;font-family:Georgia,serif;font-size:22px;">` +
      `<a href="${href}" style="color:#1a1a1a;text-decoration:none;">${paragraph.slice(0, 40)} — issue ${n}</a></h2>`,
    `<p style="margin:0 0 16px 0;font-size:15px;line-height:22px;color:#444444;">${paragraph}</p>`,
    button(`${SITE}/stories/${2026480 + n}/read?${utm(`button-${n}`)}`, 'Read more ›'),
    '</td></tr>',
  ].join('\r\n');
}

function html(paragraphs: string[], to: string): string {
  const nav = ['new-in', 'sale', 'women', 'men'].map((section) =>
    `<a href="${SITE}/${section}?${utm(`nav-${section}`)}" style="color:#1a1a1a;text-decoration:none;padding:0 8px;">${section.replace('-', ' ')}</a>`);
  const social = ['facebook.com', 'instagram.com', 'x.com'].map((site) =>
    `<a href="https://www.${site}/acmeshop" style="text-decoration:none;"><img src="${CDN}/${site.split('.')[0]}.png" width="24" height="24" alt="${site}" style="border:0;"></a>`);
  const id = encodeURIComponent(to);
  return [
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
    '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
    '<head>',
    '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1.0">',
    '<title>Acme Weekly</title>',
    '<style type="text/css">',
    'body{margin:0;padding:0;-webkit-text-size-adjust:100%;} table{border-collapse:collapse;} img{-ms-interpolation-mode:bicubic;}',
    '@media only screen and (max-width:620px){ .container{width:100% !important;} .pad{padding:16px !important;} a[href^="https"]{word-break:break-all;} }',
    '</style>',
    '</head>',
    '<body style="margin:0;padding:0;background-color:#f4f1ec;">',
    `<div style="display:none;max-height:0;overflow:hidden;">This week: ${paragraphs[0]!.slice(0, 60)}…</div>`,
    '<a name="top"></a>',
    '<!--[if mso]><table role="presentation" width="600" align="center"><tr><td><![endif]-->',
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f4f1ec;">',
    '<tr><td align="center" style="padding:12px 0;font-family:Helvetica,Arial,sans-serif;font-size:12px;color:#777777;">',
    `Trouble reading this? <a href="${SITE}/newsletter/weekly-48?r=${id}" style="color:#777777;">View it online</a>`,
    '</td></tr>',
    '<tr><td align="center">',
    '<table class="container" role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="background-color:#ffffff;">',
    `<tr><td align="center" style="padding:24px 32px;"><a href="${SITE}/?${utm('logo')}"><img src="${CDN}/logo.png" width="180" height="48" alt="Acme" style="display:block;border:0;"></a></td></tr>`,
    `<tr><td align="center" style="padding:0 32px 16px 32px;font-family:Helvetica,Arial,sans-serif;font-size:14px;text-transform:uppercase;">${nav.join(' | ')}</td></tr>`,
    `<tr><td><a href="${SITE}/sale/winter?${utm('hero')}"><img src="${CDN}/hero.jpg" width="600" height="300" alt="Winter sale: up to 40% off" style="display:block;width:100%;height:auto;border:0;"></a></td></tr>`,
    ...paragraphs.map((p, i) => article(i + 1, p)),
    '<tr><td align="center" style="padding:24px 32px;background-color:#1a1a1a;">',
    social.join('&nbsp;&nbsp;'),
    '<p style="margin:16px 0 0 0;font-family:Helvetica,Arial,sans-serif;font-size:12px;line-height:18px;color:#bbbbbb;">',
    'Acme Shop Ltd · 1 Example Street · Springfield · © 2026<br>',
    'Questions? Write to <a href="mailto:care@acme-shop.example" style="color:#bbbbbb;">care@acme-shop.example</a> · <a href="#top" style="color:#bbbbbb;">back to top</a><br>',
    `<a href="${SITE}/account/preferences?r=${id}" style="color:#bbbbbb;">Email preferences</a> · `,
    `<a href="${SITE}/unsubscribe?r=${id}&amp;list=weekly" style="color:#bbbbbb;">Unsubscribe</a>`,
    '</p>',
    '</td></tr>',
    '</table>',
    '</td></tr>',
    '</table>',
    '<!--[if mso]></td></tr></table><![endif]-->',
    '</body>',
    '</html>',
  ].join('\r\n');
}

function text(paragraphs: string[]): string {
  return [
    'Acme Weekly', '',
    ...paragraphs.map((p, i) => `${p.slice(0, 120)}…\r\nRead more: ${SITE}/stories/${2026480 + i + 1}`),
    '', `Unsubscribe: ${SITE}/unsubscribe`,
  ].join('\r\n');
}

/** Quoted-printable of UTF-8 text in 76-character lines. */
const qp = (s: string) => qpWrap(qpEncode(Buffer.from(s, 'utf8')), 76);

function build(from: string, to: string, messageId: string, subject: string, paragraphs: string[]): string {
  const boundary = `----=_Part_${randomBytes(8).toString('hex')}`;
  const message = [
    `From: Acme Weekly <${from}>`, `To: <${to}>`, `Subject: ${subject}`, `Message-ID: <${messageId}>`, `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0', `Content-Type: multipart/alternative; boundary="${boundary}"`, '',
    `--${boundary}`, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', qp(text(paragraphs)),
    `--${boundary}`, 'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', qp(html(paragraphs, to)),
    `--${boundary}--`,
  ].join('\r\n');
  // A quoted-printable line may start with a dot: stuffed, as SMTP's DATA requires.
  return message.replace(/\r\n\./g, '\r\n..');
}

/** Returns a function that makes the next newsletter: about `size` bytes plus the CRLF.CRLF ending. */
export function htmlMessageFactory(size: number, from: string, to: string): () => Buffer {
  const run = randomBytes(6).toString('hex');
  const domain = from.split('@')[1];
  // The article text that brings a message to `size`: measured once on a message without it.
  const bare = build(from, to, `bench.${run}.0@${domain}`, 'Acme Weekly 0', Array.from({ length: ARTICLES }, () => 'x'.repeat(40))).length;
  // Each paragraph is in the HTML once; quoted-printable adds a soft break (3 bytes) every 75 characters.
  // (Beyond 40 characters, a paragraph's first 120 go into the text part and the first 60 of the first into the preheader.)
  const perArticle = Math.max(40, Math.floor((size - bare - ARTICLES * 80 - 20) / ARTICLES / (1 + 3 / 75)) + 40);
  let sequence = 0;
  return () => {
    sequence += 1;
    const paragraphs = Array.from({ length: ARTICLES }, () => words(perArticle));
    const message = build(from, to, `bench.${run}.${sequence}@${domain}`, `Acme Weekly: ${paragraphs[0]!.slice(0, 30)}`, paragraphs);
    return Buffer.from(`${message}\r\n.\r\n`, 'utf8');
  };
}
