import { describe, expect, it } from 'vitest';
import { concatBytes, fromBase64, sha256Hex, toBase64, utf8Decode, utf8ToBytes } from './bytes.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Small deterministic generator, so a failure reproduces. */
function bytesFrom(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe('toBase64 / fromBase64', () => {
  it('round-trips every length from 0 to 100 and agrees with Node’s encoder', () => {
    for (let length = 0; length <= 100; length++) {
      for (const seed of [1, 2, 3]) {
        const bytes = bytesFrom(seed * 1000 + length, length);
        const text = toBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64'));
        expect(fromBase64(text)).toEqual(bytes);
      }
    }
  });

  it('round-trips random bytes from the platform generator', () => {
    for (let length = 0; length <= 100; length++) {
      const bytes = crypto.getRandomValues(new Uint8Array(length));
      expect(fromBase64(toBase64(bytes))).toEqual(bytes);
    }
  });

  it('covers every byte value and every alphabet symbol', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const text = toBase64(all);
    expect(new Set(text.replace(/=/g, ''))).toEqual(new Set(ALPHABET));
    expect(fromBase64(text)).toEqual(all);
  });

  it('encodes the RFC 4648 test vectors', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'Zg=='],
      ['fo', 'Zm8='],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg=='],
      ['fooba', 'Zm9vYmE='],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, encoded] of vectors) {
      expect(toBase64(utf8ToBytes(plain))).toBe(encoded);
      expect(utf8Decode(fromBase64(encoded))).toBe(plain);
    }
  });

  it('accepts, for one padding symbol, only final symbols whose two spare bits are zero', () => {
    for (const [index, symbol] of [...ALPHABET].entries()) {
      const text = `Zm${symbol}=`;
      if ((index & 3) === 0) expect(toBase64(fromBase64(text))).toBe(text);
      else expect(() => fromBase64(text), text).toThrow('invalid base64');
    }
  });

  it('accepts, for two padding symbols, only final symbols whose four spare bits are zero', () => {
    for (const [index, symbol] of [...ALPHABET].entries()) {
      const text = `Z${symbol}==`;
      if ((index & 15) === 0) expect(toBase64(fromBase64(text))).toBe(text);
      else expect(() => fromBase64(text), text).toThrow('invalid base64');
    }
  });

  it('gives each byte string exactly one accepted encoding', () => {
    // Every 4-symbol group that decodes must re-encode to itself: no two texts alias one value.
    for (const a of 'AZaz09+/') {
      for (const b of ALPHABET) {
        for (const tail of ['==', 'A=', 'B=', 'AA', '/+']) {
          const text = `${a}${b}${tail}`;
          let decoded: Uint8Array | undefined;
          try {
            decoded = fromBase64(text);
          } catch {
            continue;
          }
          expect(toBase64(decoded)).toBe(text);
        }
      }
    }
  });

  it('refuses text whose length is not a multiple of four', () => {
    for (const text of ['Z', 'Zg', 'Zg=', 'Zm9', 'Zm9vY', 'Zm9vYg=', 'Zm9vYmFy=']) {
      expect(() => fromBase64(text), text).toThrow('invalid base64');
    }
  });

  it('refuses characters outside the standard alphabet', () => {
    const bad = [
      'Zm9-', // URL-safe alphabet
      'Zm9_',
      'Zm 9',
      'Zm9v\n',
      ' Zm9v',
      'Zm9v\r\nYmFy',
      'Zm9.',
      'Zm9é',
      'Zm\u00009',
      'Zm9\u0660', // Arabic-Indic digit zero
    ];
    for (const text of bad) expect(() => fromBase64(text), JSON.stringify(text)).toThrow('invalid base64');
  });

  it('refuses misplaced or excess padding', () => {
    for (const text of ['====', 'Z===', '=Zm9', 'Z=m9', 'Zg==Zg==', 'Zm8=Zm8=', 'Zm9v====', 'Zg=A']) {
      expect(() => fromBase64(text), text).toThrow('invalid base64');
    }
  });

  it('refuses unpadded input that Node would accept', () => {
    expect(Buffer.from('Zg', 'base64')).toEqual(Buffer.from('f'));
    expect(() => fromBase64('Zg')).toThrow('invalid base64');
  });

  it('decodes the empty string to no bytes', () => {
    expect(fromBase64('')).toEqual(new Uint8Array(0));
  });
});

describe('other byte helpers', () => {
  it('sha256Hex matches the FIPS 180-2 vector for "abc", from text and from bytes', () => {
    const expected = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Hex('abc')).toBe(expected);
    expect(sha256Hex(utf8ToBytes('abc'))).toBe(expected);
  });

  it('concatBytes joins in order, empty parts included', () => {
    expect(concatBytes(Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3))).toEqual(
      Uint8Array.of(1, 2, 3),
    );
    expect(concatBytes()).toEqual(new Uint8Array(0));
  });

  it('utf8Decode refuses invalid UTF-8 instead of replacing it', () => {
    expect(utf8Decode(utf8ToBytes('héllo ✓ 😀'))).toBe('héllo ✓ 😀');
    expect(() => utf8Decode(Uint8Array.of(0x68, 0xff, 0x69))).toThrow();
    expect(() => utf8Decode(Uint8Array.of(0xc3))).toThrow(); // truncated sequence
    expect(() => utf8Decode(Uint8Array.of(0xed, 0xa0, 0x80))).toThrow(); // encoded surrogate
  });
});
