// The bare CR / bare LF check, at the edges of the windows it scans.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasBareLineBreak } from '../../shared/mail/line-endings.ts';

const WINDOW = 64 * 1024;

/** CRLF-clean text of `size` bytes with a CRLF whose CR is at `crAt`. */
function cleanWithCrlfAt(size: number, crAt: number): Buffer {
  const bytes = Buffer.alloc(size, 0x61);
  bytes[crAt] = 0x0d;
  bytes[crAt + 1] = 0x0a;
  return bytes;
}

test('CRLF everywhere, also across a window edge: no bare line break', () => {
  assert.equal(hasBareLineBreak(Buffer.alloc(0)), false);
  assert.equal(hasBareLineBreak(Buffer.from('a\r\nb\r\n')), false);
  for (const crAt of [WINDOW - 2, WINDOW - 1, WINDOW, 2 * WINDOW - 1]) assert.equal(hasBareLineBreak(cleanWithCrlfAt(3 * WINDOW, crAt)), false, `CR at ${crAt}`);
});

test('a bare CR or LF anywhere is found, at window edges and at the ends', () => {
  for (const at of [0, 1, WINDOW - 1, WINDOW, WINDOW + 1, 3 * WINDOW - 1]) {
    for (const byte of [0x0d, 0x0a]) {
      const bytes = Buffer.alloc(3 * WINDOW, 0x61);
      bytes[at] = byte;
      assert.equal(hasBareLineBreak(bytes), true, `${byte === 0x0d ? 'CR' : 'LF'} at ${at}`);
    }
  }
  assert.equal(hasBareLineBreak(Buffer.from('a\n\r')), true, 'LF then CR is two bare breaks');
});
