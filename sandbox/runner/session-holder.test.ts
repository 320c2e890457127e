import { describe, expect, it } from 'vitest';
import { EndMarkerScanner, newEndMarker } from './session-holder.js';

describe('the end marker scanner', () => {
  const marker = newEndMarker();

  it('removes the marker and reports the end', () => {
    const scanner = new EndMarkerScanner(marker);
    expect(scanner.push(`last line\r\n${marker}`)).toEqual({ text: 'last line\r\n', ended: true });
  });

  it('finds a marker split across chunks without losing or showing any of it', () => {
    const scanner = new EndMarkerScanner(marker);
    const cut = 7;
    expect(scanner.push(`output${marker.slice(0, cut)}`)).toEqual({ text: 'output', ended: false });
    expect(scanner.push(marker.slice(cut))).toEqual({ text: '', ended: true });
  });

  it('gives back held text that only looked like the start of the marker', () => {
    const scanner = new EndMarkerScanner(marker);
    expect(scanner.push('a\u001b]')).toEqual({ text: 'a', ended: false });
    expect(scanner.push('0;title\u0007b')).toEqual({ text: '\u001b]0;title\u0007b', ended: false });
    expect(scanner.push('c\u001b')).toEqual({ text: 'c', ended: false });
    expect(scanner.flush()).toBe('\u001b');
  });

  it('makes a new, unguessable marker for every run', () => {
    expect(newEndMarker()).not.toBe(newEndMarker());
    expect(marker.startsWith('\u001b]countersign-end;') && marker.endsWith('\u0007')).toBe(true);
    expect(marker.slice('\u001b]countersign-end;'.length, -1)).toMatch(/^[0-9a-f]{24}$/);
  });
});
