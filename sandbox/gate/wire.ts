/**
 * A protobuf wire reader for the worker gate: it reads a message the way Temporal's server (Go's
 * protobuf) will, but returns every occurrence of every field instead of keeping the last one, so
 * the gate can refuse what two decoders could read differently. It is stricter than the spec
 * where no honest encoder goes: varints must be minimally encoded, groups are refused.
 */

/** Wire data the gate will not pass, with the reason. */
export class WireError extends Error {
  override readonly name = 'WireError';
}

export const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;
export type WireType = (typeof WIRE)[keyof typeof WIRE];

export interface WireField {
  number: number;
  wireType: WireType;
  /** The value as written: the varint's bytes, the 8 or 4 fixed bytes, or the delimited content. */
  bytes: Uint8Array;
  /** The value of a varint (wire type 0). */
  varint?: bigint;
}

/** Every field of a message, by number, each with its occurrences in wire order. */
export type WireMessage = Map<number, WireField[]>;

const MAX_FIELD_NUMBER = 2 ** 29 - 1;

/** Reads a varint at `at`: at most 10 bytes and 64 bits, minimally encoded. */
export function readVarint(data: Uint8Array, at: number): { value: bigint; end: number } {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    if (at + i >= data.length) throw new WireError('truncated varint');
    const byte = data[at + i]!;
    if (i === 9 && byte > 1) throw new WireError('varint longer than 64 bits');
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if (byte < 0x80) {
      // 0x80 0x00 and the like: Go accepts padded varints, other readers may not.
      if (i > 0 && byte === 0) throw new WireError('varint not minimally encoded');
      return { value, end: at + i + 1 };
    }
  }
  throw new WireError('varint longer than 10 bytes');
}

/** Reads the fields of one message, in wire order. */
export function readFields(data: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let at = 0;
  while (at < data.length) {
    const tag = readVarint(data, at);
    at = tag.end;
    const number = Number(tag.value >> 3n);
    const wireType = Number(tag.value & 7n);
    if (number < 1 || number > MAX_FIELD_NUMBER)
      throw new WireError(`field number ${tag.value >> 3n} is out of range`);
    const take = (length: number) => {
      if (length > data.length - at) throw new WireError(`field ${number} runs past the end of its message`);
      const bytes = data.subarray(at, at + length);
      at += length;
      return bytes;
    };
    switch (wireType) {
      case WIRE.varint: {
        const start = at;
        const { value, end } = readVarint(data, at);
        at = end;
        fields.push({ number, wireType, bytes: data.subarray(start, end), varint: value });
        break;
      }
      case WIRE.fixed64:
        fields.push({ number, wireType, bytes: take(8) });
        break;
      case WIRE.fixed32:
        fields.push({ number, wireType, bytes: take(4) });
        break;
      case WIRE.bytes: {
        const length = readVarint(data, at);
        at = length.end;
        if (length.value > BigInt(data.length - at))
          throw new WireError(`field ${number} runs past the end of its message`);
        fields.push({ number, wireType, bytes: take(Number(length.value)) });
        break;
      }
      case 3:
      case 4:
        throw new WireError(`field ${number} is a group (wire type ${wireType})`);
      default:
        throw new WireError(`field ${number} has unknown wire type ${wireType}`);
    }
  }
  return fields;
}

/** Reads one message: every field number with all its occurrences. */
export function readMessage(data: Uint8Array): WireMessage {
  const message: WireMessage = new Map();
  for (const field of readFields(data)) {
    const seen = message.get(field.number);
    if (seen) seen.push(field);
    else message.set(field.number, [field]);
  }
  return message;
}

/** The values of a packed repeated field of `elementWireType`. */
export function readPacked(data: Uint8Array, elementWireType: WireType): number {
  if (elementWireType === WIRE.fixed32 || elementWireType === WIRE.fixed64) {
    const size = elementWireType === WIRE.fixed32 ? 4 : 8;
    if (data.length % size)
      throw new WireError(`packed field of ${size}-byte values has ${data.length} bytes`);
    return data.length / size;
  }
  if (elementWireType !== WIRE.varint) throw new WireError('only numeric fields can be packed');
  let count = 0;
  for (let at = 0; at < data.length; count++) at = readVarint(data, at).end;
  return count;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A string field's text; Go refuses proto3 strings that are not valid UTF-8, so the gate does too. */
export function readString(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new WireError('string is not valid UTF-8');
  }
}

/** The one occurrence of field `number`, or undefined; two or more is an error. */
export function single(message: WireMessage, number: number): WireField | undefined {
  const occurrences = message.get(number);
  if (occurrences && occurrences.length > 1)
    throw new WireError(`field ${number} occurs ${occurrences.length} times`);
  return occurrences?.[0];
}
