import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical.js';

describe('canonicalJson', () => {
  it('sorts object keys at every level and leaves no white space', () => {
    const value = { b: 1, a: { z: [3, { y: true, x: null }], m: 'text' }, c: [] };
    expect(canonicalJson(value)).toBe('{"a":{"m":"text","z":[3,{"x":null,"y":true}]},"b":1,"c":[]}');
  });

  it('encodes the same value the same way whatever the insertion order of its keys', () => {
    const one = { env: { PATH: '/bin', HOME: '/root', LANG: 'C' }, id: 'a' };
    const two = { id: 'a', env: { LANG: 'C', HOME: '/root', PATH: '/bin' } };
    expect(canonicalJson(one)).toBe(canonicalJson(two));
  });

  it('keeps array order: arrays are sequences, not sets', () => {
    expect(canonicalJson([2, 1])).toBe('[2,1]');
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
  });

  it('sorts keys by UTF-16 code unit, not by locale or code point', () => {
    // Code points would put U+1F600 after U+FFFF; code units (0xD83D) put it before.
    const value = { '\uffff': 5, '😀': 4, é: 3, z: 2, Z: 1, '': 0 };
    expect(canonicalJson(value)).toBe('{"":0,"Z":1,"z":2,"é":3,"😀":4,"\uffff":5}');
  });

  it('writes non-ASCII text as itself and escapes what JSON must escape', () => {
    expect(canonicalJson('héllo ✓ 😀')).toBe('"héllo ✓ 😀"');
    expect(canonicalJson('a"b\\c\n\t\u0000')).toBe('"a\\"b\\\\c\\n\\t\\u0000"');
    // A lone surrogate cannot be UTF-8 encoded: it is escaped rather than silently replaced.
    expect(canonicalJson('\ud800')).toBe('"\\ud800"');
    expect(canonicalJson('\ud800')).not.toBe(canonicalJson('\udc00'));
  });

  it('distinguishes strings that differ only by Unicode normalisation', () => {
    // "é" precomposed vs "e" + combining acute: different bytes, so different digests.
    expect(canonicalJson('\u00e9')).not.toBe(canonicalJson('e\u0301'));
  });

  it('encodes safe integers, including negative ones and -0 as 0', () => {
    expect(canonicalJson(0)).toBe('0');
    expect(canonicalJson(-0)).toBe('0');
    expect(canonicalJson(-42)).toBe('-42');
    expect(canonicalJson(Number.MAX_SAFE_INTEGER)).toBe('9007199254740991');
    expect(canonicalJson(Number.MIN_SAFE_INTEGER)).toBe('-9007199254740991');
  });

  it('writes fractions as ECMAScript does (RFC 8785), so tool arguments such as 1.5 have one encoding', () => {
    expect(canonicalJson(1.5)).toBe('1.5');
    expect(canonicalJson(0.1)).toBe('0.1');
    expect(canonicalJson(-2.5e-7)).toBe('-2.5e-7');
    expect(canonicalJson(JSON.parse('1.50') as number)).toBe(canonicalJson(1.5));
  });

  it('refuses NaN, infinities and unsafe integers', () => {
    for (const n of [NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), 1e21]) {
      expect(() => canonicalJson(n), String(n)).toThrow(/safe integers only/);
      expect(() => canonicalJson({ n }), String(n)).toThrow(/safe integers only/);
    }
  });

  it('drops undefined object members but refuses undefined elsewhere', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(canonicalJson({ a: undefined })).toBe(canonicalJson({}));
    expect(() => canonicalJson([1, undefined])).toThrow('canonical JSON cannot encode a undefined');
    expect(() => canonicalJson(undefined)).toThrow('canonical JSON cannot encode a undefined');
  });

  it('refuses values JSON has no encoding for', () => {
    expect(() => canonicalJson(10n)).toThrow('cannot encode a bigint');
    expect(() => canonicalJson(() => 1)).toThrow('cannot encode a function');
    expect(() => canonicalJson(Symbol('s'))).toThrow('cannot encode a symbol');
    expect(() => canonicalJson({ nested: [{ deep: 1n }] })).toThrow('cannot encode a bigint');
  });

  it('encodes an own "__proto__" key as data', () => {
    const value = JSON.parse('{"__proto__":{"x":1},"a":2}') as unknown;
    expect(canonicalJson(value)).toBe('{"__proto__":{"x":1},"a":2}');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('round-trips through JSON.parse to an equal value', () => {
    const value = { list: [1, 'two', false, null, { k: 'v' }], text: 'ü\u2028', n: -7 };
    expect(JSON.parse(canonicalJson(value))).toEqual(value);
  });
});
