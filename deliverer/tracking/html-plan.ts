// Where tracking goes in one HTML part: the part's text cut into literal pieces and slots (a
// link to rewrite, an open pixel to insert), found once per message and filled in per
// recipient. Tags are found as a browser's tokenizer finds them (html-tags.ts), so links inside
// comments, scripts and styles are not mistaken for tags; only the attributes of <a> and <area>
// tags are read here.
//
// The text is the part's bytes seen one character per byte ("latin1"), so whatever the
// charset, bytes that are not touched stay exactly as they were; HTML's syntax characters are
// ASCII in every ASCII-compatible charset, and what is inserted is ASCII too.
import { decodeHTMLAttribute } from 'entities';
import { htmlTags } from './html-tags.ts';

/** A link whose target is tracked; `original` is the attribute as written, kept when the link cannot be rewritten. */
export interface LinkSlot {
  kind: 'link';
  target: string;
  /** The whitespace before `href`, which may become a line break to keep lines short. */
  space: string;
  original: string;
}

export interface PixelSlot {
  kind: 'pixel';
  which: 'open' | 'initial_open';
}

export type HtmlSegment = string | LinkSlot | PixelSlot;

export interface HtmlPlanOptions {
  clicks: boolean;
  opens: boolean;
  /** The attribute value's bytes (as latin1 text) decoded in the part's charset. */
  decodeCharset: (latin1: string) => string;
  /** Same length as the text, with multi-byte runs that could look like HTML blanked out (ISO-2022); else the text. */
  scanText?: string;
}

/**
 * Set on a link (`data-msys-clicktrack="0"`, as SparkPost's senders write it) to keep it out
 * of click tracking. The attribute itself is left in place.
 */
export const NO_TRACK_ATTRIBUTE = 'data-msys-clicktrack';

/** Targets longer than this stay untracked: their token would not fit a line or a URL. */
export const MAX_TRACKED_TARGET = 2000;

/** An attribute inside a start tag: name, then an optional value in double, single or no quotes. */
const ATTRIBUTE = /([\s/]*)([^\s"'>/=][^\s"'>/=]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?/y;

interface Attribute {
  name: string;
  value: string | undefined;
  /** Offsets in the tag of the whitespace before the name, and of the end of the value. */
  spaceStart: number;
  nameStart: number;
  end: number;
}

function attributesOf(tag: string): Attribute[] {
  const attributes: Attribute[] = [];
  const nameEnd = /^<[^\s/>]+/.exec(tag)?.[0].length ?? 1;
  ATTRIBUTE.lastIndex = nameEnd;
  for (let match = ATTRIBUTE.exec(tag); match; match = ATTRIBUTE.exec(tag)) {
    const spaceStart = match.index;
    attributes.push({
      name: match[2]!.toLowerCase(),
      value: match[3] ?? match[4] ?? match[5],
      spaceStart,
      nameStart: spaceStart + match[1]!.length,
      end: ATTRIBUTE.lastIndex,
    });
  }
  return attributes;
}

/** The URL a browser would follow for an href value, when it is http(s) and short enough to track. */
export function trackableTarget(hrefLatin1: string, decodeCharset: (latin1: string) => string): string | undefined {
  // Browsers decode character references, then strip leading and trailing spaces (the URL parser drops tabs and newlines).
  const href = decodeHTMLAttribute(decodeCharset(hrefLatin1)).trim();
  if (!/^https?:/i.test(href)) return undefined; // mailto:, tel:, #anchors, relative links, javascript:
  const url = URL.parse(href);
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.host) return undefined;
  return url.href.length <= MAX_TRACKED_TARGET ? url.href : undefined;
}

interface Found {
  links: { start: number; end: number; slot: LinkSlot }[];
  bodyOpenEnd?: number;
  closeAt?: number;
}

/** The tracked link of an <a> or <area> tag spanning html[start, end), if it has one. */
function linkOf(html: string, scan: string, start: number, end: number, options: HtmlPlanOptions): Found['links'][number] | undefined {
  const tag = html.slice(start, end);
  const attributes = attributesOf(scan.slice(start, end));
  const optOut = attributes.find((a) => a.name === NO_TRACK_ATTRIBUTE);
  if (optOut && (optOut.value ?? '').trim() === '0') return undefined;
  const href = attributes.find((a) => a.name === 'href'); // the first one counts, as in a browser
  if (!href || href.value === undefined) return undefined;
  // The value's bytes come from the tag itself: the scan text may have blanked some out.
  const raw = tag.slice(href.nameStart, href.end).replace(/^[^=]*=\s*/, '').replace(/^(["'])([\s\S]*)\1$/, '$2');
  const target = trackableTarget(raw, options.decodeCharset);
  if (!target) return undefined;
  return {
    start: start + href.spaceStart,
    end: start + href.end,
    slot: { kind: 'link', target, space: tag.slice(href.spaceStart, href.nameStart), original: tag.slice(href.spaceStart, href.end) },
  };
}

function findTags(html: string, scan: string, options: HtmlPlanOptions): Found {
  const found: Found = { links: [] };
  let bodyClose: number | undefined;
  let htmlClose: number | undefined;
  for (const { name, end: isEnd, start, stop } of htmlTags(scan)) {
    if (isEnd) {
      if (name === 'body') bodyClose = start;
      if (name === 'html') htmlClose = start;
    } else if (name === 'body') {
      found.bodyOpenEnd ??= stop;
    } else if (options.clicks && (name === 'a' || name === 'area')) {
      const link = linkOf(html, scan, start, stop, options);
      if (link) found.links.push(link);
    }
  }
  const closeAt = bodyClose ?? htmlClose;
  if (closeAt !== undefined) found.closeAt = closeAt;
  return found;
}

/**
 * The part's text as literal pieces and slots: each tracked link's ` href="…"` becomes a slot;
 * with opens, an `initial_open` pixel right after `<body …>` (else at the start) and an `open`
 * pixel right before `</body>` (else `</html>`, else at the end).
 */
export function planHtml(html: string, options: HtmlPlanOptions): HtmlSegment[] {
  const found = findTags(html, options.scanText ?? html, options);
  const cuts: { at: number; end: number; slot: HtmlSegment }[] = found.links.map((l) => ({ at: l.start, end: l.end, slot: l.slot }));
  if (options.opens) {
    const top = found.bodyOpenEnd ?? 0;
    cuts.push({ at: top, end: top, slot: { kind: 'pixel', which: 'initial_open' } });
    const bottom = found.closeAt ?? html.length;
    cuts.push({ at: bottom, end: bottom, slot: { kind: 'pixel', which: 'open' } });
  }
  cuts.sort((a, b) => a.at - b.at); // stable: where both pixels fall at one place, initial_open comes first
  const segments: HtmlSegment[] = [];
  let position = 0;
  for (const cut of cuts) {
    if (cut.at > position) segments.push(html.slice(position, cut.at));
    segments.push(cut.slot);
    position = cut.end;
  }
  if (position < html.length) segments.push(html.slice(position));
  return segments;
}
