// How an HTML part's bytes are read to find its links, by charset. In the charsets mail uses
// (UTF-8, ISO-8859-*, Windows-125*, Shift_JIS, EUC-*, GB*, Big5, ISO-2022-*) HTML's syntax
// characters are the ASCII bytes, so the part is read one character per byte and only the links
// change: every other byte stays as the sender wrote it. ISO-2022 switches to two-byte
// characters whose bytes can look like ASCII; those runs are blanked for the scan. UTF-16, UTF-32
// and UTF-7 are not ASCII-compatible: they are decoded, rewritten and encoded again.
import iconv from 'iconv-lite';

export interface CharsetView {
  /** False for UTF-16, UTF-32 and UTF-7, whose bytes are not those of ASCII for ASCII text. */
  asciiCompatible: boolean;
  /** The text to rewrite: one character per byte, or the decoded text where the charset is not ASCII-compatible. */
  text: string;
  /** `text` with ISO-2022 two-byte runs blanked out, for finding tags. Same length. */
  scan: string;
  /** Decodes an attribute value (a piece of `text`) to the characters it stands for. */
  decodeCharset: (piece: string) => string;
  /** The part's bytes for a rewritten `text`. */
  encode: (text: string) => Buffer;
}

const NOT_ASCII_COMPATIBLE = /^(utf-?(16|32)(le|be)?|ucs-?2|utf-?7)$/;

/** Two-byte runs: after ESC $ … until ESC ( …, and between SO and SI (ISO-2022-KR). */
const ISO_2022_TWO_BYTE = /\x1b\$[\s\S]*?(?=\x1b\(|$)|\x0e[\s\S]*?(?=\x0f|$)/g;

/** Printable ASCII reads the same in every ASCII-compatible charset: most links are only that. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function decodeBytes(latin1: string, charset: string): string {
  if (PRINTABLE_ASCII.test(latin1)) return latin1;
  const bytes = Buffer.from(latin1, 'latin1');
  return iconv.encodingExists(charset) ? iconv.decode(bytes, charset) : bytes.toString('utf8');
}

/** `latin1`: the part's decoded bytes, one character per byte. */
export function charsetView(latin1: string, charset: string | false | undefined): CharsetView {
  const name = (charset || 'us-ascii').trim().toLowerCase();
  if (NOT_ASCII_COMPATIBLE.test(name) && iconv.encodingExists(name)) {
    const hadBom = /^(\xfe\xff|\xff\xfe)/.test(latin1.slice(0, 2));
    const text = iconv.decode(Buffer.from(latin1, 'latin1'), name);
    return { asciiCompatible: false, text, scan: text, decodeCharset: (piece) => piece, encode: (rewritten) => iconv.encode(rewritten, name, { addBOM: hadBom }) };
  }
  const text = latin1;
  const scan = name.startsWith('iso-2022') ? text.replace(ISO_2022_TWO_BYTE, (run) => 'x'.repeat(run.length)) : text;
  return {
    asciiCompatible: true,
    text,
    scan,
    decodeCharset: (piece) => decodeBytes(piece, name),
    encode: (rewritten) => Buffer.from(rewritten, 'latin1'),
  };
}
