/**
 * gRPC length-prefixed messages (a 1-byte compressed flag, a 4-byte big-endian length) as the
 * worker gate accepts them: a unary call carries exactly one message, the flag is 0 or 1, and a
 * compressed message needs `grpc-encoding: gzip`, the only compression the gate reads. The gate
 * forwards the message it inspected, uncompressed, so what it checked is what Temporal decodes.
 */
import { gunzipSync } from 'node:zlib';
import { WireError } from './wire.js';

/** No request of a worker is larger; a compressed one may not inflate past it either. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Message encodings the gate can read. */
export const READABLE_ENCODINGS = ['identity', 'gzip'] as const;

/** The one message of a unary gRPC body, inflated; a WireError says why it cannot be read. */
export function singleGrpcMessage(body: Buffer, encoding: string | string[] | undefined): Buffer {
  if (Array.isArray(encoding) || (encoding !== undefined && !/^(identity|gzip)$/.test(encoding)))
    throw new WireError(`grpc-encoding ${String(encoding)} is not accepted (identity or gzip)`);
  if (body.length < 5) throw new WireError('body holds no complete gRPC message');
  const flag = body[0]!;
  const length = body.readUInt32BE(1);
  if (flag > 1) throw new WireError(`gRPC compressed flag is ${flag}`);
  if (length > body.length - 5) throw new WireError('gRPC message runs past the end of the body');
  if (length + 5 < body.length) throw new WireError('body holds more than one gRPC message');
  const payload = body.subarray(5, 5 + length);
  if (flag === 0) return payload;
  if (encoding !== 'gzip') throw new WireError('compressed gRPC message without grpc-encoding gzip');
  try {
    return gunzipSync(payload, { maxOutputLength: MAX_MESSAGE_BYTES });
  } catch (error) {
    throw new WireError(`gzip: ${(error as Error).message}`);
  }
}

/** One uncompressed gRPC message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** `grpc-accept-encoding` narrowed to what the gate reads, so responses stay readable. */
export function readableAcceptEncoding(header: string | string[] | undefined): string {
  const offered = String(header ?? '')
    .split(',')
    .map((e) => e.trim());
  return READABLE_ENCODINGS.filter((e) => e === 'identity' || offered.includes(e)).join(',');
}
