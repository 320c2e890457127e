/**
 * Checks a message against its schema (the SDK's own Temporal protos, the ones the worker's core
 * encodes with) at every depth, refusing whatever two protobuf decoders could read differently:
 * a non-repeated field or a oneof given twice (Go keeps the last scalar and merges messages;
 * protobufjs replaces), a field with the wrong wire type (Go files it as unknown, protobufjs reads
 * it anyway), repeated numbers mixing packed and unpacked runs, a map key given twice, invalid
 * UTF-8, and fields the schema does not know (a newer server could give them a meaning).
 */
import proto from '@temporalio/proto';
import type { Enum, FieldBase, MapField, Root, Type } from 'protobufjs';
import {
  readFields,
  readPacked,
  readString,
  WIRE,
  WireError,
  type WireField,
  type WireType,
} from './wire.js';

// The package's default export is its reflection root (protobufjs JSON module), typed as namespaces.
const root = proto as unknown as Root;

const WIRE_TYPE_OF: Record<string, WireType> = {
  int32: WIRE.varint,
  int64: WIRE.varint,
  uint32: WIRE.varint,
  uint64: WIRE.varint,
  sint32: WIRE.varint,
  sint64: WIRE.varint,
  bool: WIRE.varint,
  fixed64: WIRE.fixed64,
  sfixed64: WIRE.fixed64,
  double: WIRE.fixed64,
  fixed32: WIRE.fixed32,
  sfixed32: WIRE.fixed32,
  float: WIRE.fixed32,
  string: WIRE.bytes,
  bytes: WIRE.bytes,
};
/** Deeper than Temporal's failure chains go, far below Go's own limit. */
const MAX_DEPTH = 64;

/** The schema type of a fully qualified message name, e.g. temporal.api.taskqueue.v1.TaskQueue. */
export function messageType(name: string): Type {
  return root.lookupType(name);
}

/** Wire type of a field's (element) values, and the message type when it holds messages. */
function shapeOf(field: FieldBase): { wireType: WireType; message?: Type; numeric: boolean } {
  field.resolve();
  const scalar = WIRE_TYPE_OF[field.type];
  if (scalar !== undefined) return { wireType: scalar, numeric: scalar !== WIRE.bytes };
  const resolved = field.resolvedType as Type | Enum | null;
  if (!resolved) throw new Error(`unresolved protobuf type ${field.type}`);
  if ('values' in resolved) return { wireType: WIRE.varint, numeric: true }; // an enum
  return { wireType: WIRE.bytes, message: resolved, numeric: false };
}

function checkValue(
  field: FieldBase,
  value: WireField,
  shape: ReturnType<typeof shapeOf>,
  depth: number,
): void {
  if (shape.message) checkMessage(shape.message, value.bytes, depth + 1);
  else if (field.type === 'string') readString(value.bytes);
}

function checkMapEntries(type: Type, field: MapField, entries: WireField[], depth: number): void {
  const keyShape = WIRE_TYPE_OF[field.keyType];
  const value = shapeOf(field);
  const keys = new Set<string>();
  for (const entry of entries) {
    if (entry.wireType !== WIRE.bytes)
      throw new WireError(`${type.name}.${field.name} entry is not length-delimited`);
    let key = '';
    const seen = new Set<number>();
    for (const part of readFields(entry.bytes)) {
      if (part.number !== 1 && part.number !== 2)
        throw new WireError(`${type.name}.${field.name} entry has unknown field ${part.number}`);
      if (seen.has(part.number))
        throw new WireError(`${type.name}.${field.name} entry repeats field ${part.number}`);
      seen.add(part.number);
      const expected = part.number === 1 ? keyShape : value.wireType;
      if (part.wireType !== expected)
        throw new WireError(
          `${type.name}.${field.name} entry field ${part.number} has wire type ${part.wireType}`,
        );
      if (part.number === 1)
        key = field.keyType === 'string' ? readString(part.bytes) : Buffer.from(part.bytes).toString('hex');
      else checkValue(field, part, value, depth);
    }
    if (keys.has(key)) throw new WireError(`${type.name}.${field.name} repeats map key "${key}"`);
    keys.add(key);
  }
}

/** Throws a WireError saying what in `data` could be read two ways, as a `type`. */
export function checkMessage(type: Type, data: Uint8Array, depth = 0): void {
  if (depth > MAX_DEPTH) throw new WireError(`${type.name} nested deeper than ${MAX_DEPTH}`);
  const byNumber = new Map<number, WireField[]>();
  for (const field of readFields(data)) {
    const list = byNumber.get(field.number);
    if (list) list.push(field);
    else byNumber.set(field.number, [field]);
  }
  for (const [number, occurrences] of byNumber) {
    const field = type.fieldsById[number];
    if (!field) throw new WireError(`${type.name} has no field ${number}`);
    const where = `${type.name}.${field.name} (field ${number})`;
    if (field.map) {
      checkMapEntries(type, field as unknown as MapField, occurrences, depth);
      continue;
    }
    const shape = shapeOf(field);
    if (!field.repeated) {
      if (occurrences.length > 1) throw new WireError(`${where} occurs ${occurrences.length} times`);
      if (occurrences[0]!.wireType !== shape.wireType)
        throw new WireError(`${where} has wire type ${occurrences[0]!.wireType}, not ${shape.wireType}`);
      checkValue(field, occurrences[0]!, shape, depth);
      continue;
    }
    if (shape.numeric) {
      const packed = occurrences.filter((o) => o.wireType === WIRE.bytes);
      if (packed.length && packed.length !== occurrences.length)
        throw new WireError(`${where} mixes packed and unpacked values`);
      if (packed.length > 1) throw new WireError(`${where} is packed in ${packed.length} runs`);
      for (const o of occurrences) {
        if (o.wireType === WIRE.bytes) readPacked(o.bytes, shape.wireType);
        else if (o.wireType !== shape.wireType) throw new WireError(`${where} has wire type ${o.wireType}`);
      }
      continue;
    }
    for (const o of occurrences) {
      if (o.wireType !== shape.wireType) throw new WireError(`${where} has wire type ${o.wireType}`);
      checkValue(field, o, shape, depth);
    }
  }
  for (const oneof of type.oneofsArray) {
    const present = oneof.fieldsArray.filter((f) => byNumber.has(f.id));
    if (present.length > 1)
      throw new WireError(
        `${type.name}.${oneof.name} is set ${present.length} ways (${present.map((f) => f.name).join(', ')})`,
      );
  }
}
