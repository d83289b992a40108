// The start and end tags of an HTML text, found as a browser's tokenizer finds them (WHATWG
// HTML 13.2.5): a tag opens at "<" followed by a letter (or "/" and a letter for an end tag) and
// ends at the first ">" outside a quoted attribute value; comments, doctypes and processing
// instructions are skipped whole; the text inside <script>, <style>, <textarea>, <title>,
// <xmp>, <iframe>, <noembed>, <noframes> and <noscript> is text, not tags, up to its end tag.
// Only what tracking needs is reported (the tag's name and where it starts and ends), and the
// scan moves by native string searches from one "<" to the next: a newsletter's 10 KB of HTML
// costs a few hundred of them, not a state machine step per character.

export interface Tag {
  /** Lower case. */
  name: string;
  end: boolean;
  /** Offset of "<". */
  start: number;
  /** Offset just past ">". */
  stop: number;
}

const RAW_TEXT = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'iframe', 'noembed', 'noframes', 'noscript']);
/** Each raw-text element's end tag, made once. */
const RAW_TEXT_END = new Map([...RAW_TEXT].map((name) => [name, new RegExp(`</${name}[\\t\\n\\f\\r />]`, 'ig')]));
const TAG_NAME = /[^\t\n\f\r />]*/y;
/** Inside a start tag: a quoted attribute value to step over (only right after "="), or the ">" that ends the tag. */
const IN_TAG = /=[\t\n\f\r ]*(?:"[^"]*"?|'[^']*'?)|>/g;

function isLetter(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/** Where a start tag whose name ends at `from` stops: past the ">" outside quotes, or the text's end. */
function startTagStop(html: string, from: number): number {
  IN_TAG.lastIndex = from;
  for (let match = IN_TAG.exec(html); match; match = IN_TAG.exec(html)) {
    if (match[0] === '>') return IN_TAG.lastIndex;
  }
  return html.length;
}

export function* htmlTags(html: string): Generator<Tag> {
  let at = html.indexOf('<');
  while (at !== -1 && at < html.length - 1) {
    const next = html.charCodeAt(at + 1);
    if (next === 0x21 /* ! */) {
      // <!-- comment -->, or <!DOCTYPE …>, <![CDATA[ … ]]> (bogus comments in HTML: up to ">").
      const stop = html.startsWith('<!--', at) ? html.indexOf('-->', at + 4) : html.indexOf('>', at + 2);
      if (stop === -1) return;
      at = html.indexOf('<', stop + (html.startsWith('<!--', at) ? 3 : 1));
      continue;
    }
    if (next === 0x3f /* ? */) {
      const stop = html.indexOf('>', at + 2);
      if (stop === -1) return;
      at = html.indexOf('<', stop + 1);
      continue;
    }
    const end = next === 0x2f /* / */;
    const nameStart = at + (end ? 2 : 1);
    if (!isLetter(html.charCodeAt(nameStart))) {
      at = html.indexOf('<', at + 1); // a "<" that opens no tag is text
      continue;
    }
    TAG_NAME.lastIndex = nameStart;
    TAG_NAME.exec(html);
    const name = html.slice(nameStart, TAG_NAME.lastIndex).toLowerCase();
    const stop = end ? html.indexOf('>', TAG_NAME.lastIndex) + 1 || html.length : startTagStop(html, TAG_NAME.lastIndex);
    yield { name, end, start: at, stop };
    if (!end && RAW_TEXT.has(name)) {
      // Raw text: the next tag is this element's end tag, whatever looks like a tag before it.
      const close = RAW_TEXT_END.get(name)!;
      close.lastIndex = stop;
      const found = close.exec(html);
      at = found ? found.index : -1;
      continue;
    }
    at = html.indexOf('<', stop);
  }
}
