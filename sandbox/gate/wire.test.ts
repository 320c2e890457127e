import { gzipSync } from 'node:zlib';
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { grpcFrame, readableAcceptEncoding, singleGrpcMessage } from './frames.js';
import { checkMessage, messageType } from './strict.js';
import { issuedTokenOf } from './worker-gate.js';
import { readMessage, readVarint, WireError } from './wire.js';

const api = proto.temporal.api.workflowservice.v1;
const bytes = (...b: number[]) => Uint8Array.from(b);
/** A length-delimited field. */
const ld = (number: number, content: Uint8Array | string) => {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  const length: number[] = [];
  for (let n = data.length; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([bytes((number << 3) | 2, ...length), data]);
};
const varintField = (number: number, value: number) => bytes(number << 3, value);
const cat = (...parts: Uint8Array[]) => Buffer.concat(parts);
const type = (name: string) => messageType(`temporal.api.workflowservice.v1.${name}`);
const refusal = (fn: () => unknown) => {
  try {
    fn();
    return 'passed';
  } catch (error) {
    if (error instanceof WireError) return error.message;
    throw error;
  }
};

describe('the wire reader', () => {
  it('reads varints up to 64 bits, minimally encoded only', () => {
    expect(readVarint(bytes(0x96, 0x01), 0)).toEqual({ value: 150n, end: 2 });
    const max = bytes(...Array<number>(9).fill(0xff), 0x01);
    expect(readVarint(max, 0).value).toBe(2n ** 64n - 1n);
    expect(() => readVarint(bytes(0x96), 0)).toThrow('truncated varint');
    expect(() => readVarint(bytes(...Array<number>(9).fill(0xff), 0x02), 0)).toThrow('longer than 64 bits');
    expect(() => readVarint(bytes(...Array<number>(10).fill(0x80), 0x00), 0)).toThrow('longer than 64 bits');
    expect(() => readVarint(bytes(0x81, 0x00), 0)).toThrow('not minimally encoded');
  });

  it('returns every occurrence of every field, in order', () => {
    const message = readMessage(cat(ld(1, 'a'), varintField(3, 7), ld(1, 'b')));
    expect([...message.keys()]).toEqual([1, 3]);
    expect(message.get(1)!.map((f) => Buffer.from(f.bytes).toString())).toEqual(['a', 'b']);
    expect(message.get(3)![0]!.varint).toBe(7n);
  });

  it('refuses malformed wire data', () => {
    expect(refusal(() => readMessage(bytes(0x0a, 0x05, 0x61)))).toMatch('runs past the end');
    expect(refusal(() => readMessage(bytes(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f)))).toMatch(
      'runs past the end',
    );
    expect(refusal(() => readMessage(bytes(0x08)))).toMatch('truncated varint');
    expect(refusal(() => readMessage(bytes(0x08, 0x80)))).toMatch('truncated varint');
    expect(refusal(() => readMessage(bytes(0x0b, 0x0c)))).toMatch('group (wire type 3)');
    expect(refusal(() => readMessage(bytes(0x0c)))).toMatch('group (wire type 4)');
    expect(refusal(() => readMessage(bytes(0x0e)))).toMatch('unknown wire type 6');
    expect(refusal(() => readMessage(bytes(0x0f)))).toMatch('unknown wire type 7');
    expect(refusal(() => readMessage(bytes(0x02, 0x00)))).toMatch('field number 0');
    expect(refusal(() => readMessage(bytes(0x09, 1, 2, 3)))).toMatch('runs past the end'); // fixed64
    expect(refusal(() => readMessage(bytes(0x0d, 1, 2, 3)))).toMatch('runs past the end'); // fixed32
  });
});

describe('schema checks (what Go and protobufjs could read differently)', () => {
  const heartbeat = type('RecordActivityTaskHeartbeatRequest');
  const poll = type('PollActivityTaskQueueRequest');

  it('passes what the SDK encodes, nested payloads, failures and maps included', () => {
    const failed = api.RespondActivityTaskFailedRequest.encode({
      taskToken: bytes(1, 2, 3),
      namespace: 'ns',
      identity: 'me',
      failure: {
        message: 'boom',
        cause: { message: 'inner', applicationFailureInfo: { type: 'X', nonRetryable: true } },
        applicationFailureInfo: {
          details: {
            payloads: [{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('1') }],
          },
        },
      },
    }).finish();
    expect(refusal(() => checkMessage(type('RespondActivityTaskFailedRequest'), failed))).toBe('passed');
    const shutdown = api.ShutdownWorkerRequest.encode({
      namespace: 'ns',
      taskQueue: 'q',
      taskQueueTypes: [1, 2],
    }).finish();
    expect(refusal(() => checkMessage(type('ShutdownWorkerRequest'), shutdown))).toBe('passed');
  });

  it('refuses a non-repeated field given twice, at the top and nested', () => {
    const twoTokens = cat(ld(1, 'real'), ld(1, 'forged'), ld(4, 'ns'));
    expect(refusal(() => checkMessage(heartbeat, twoTokens))).toMatch('taskToken (field 1) occurs 2 times');
    const twoQueues = cat(ld(1, 'ns'), ld(2, ld(1, 'q')), ld(2, ld(1, 'other')));
    expect(refusal(() => checkMessage(poll, twoQueues))).toMatch('taskQueue (field 2) occurs 2 times');
    const twoNames = cat(ld(1, 'ns'), ld(2, cat(ld(1, 'q'), ld(1, 'other'))));
    expect(refusal(() => checkMessage(poll, twoNames))).toMatch('TaskQueue.name (field 1) occurs 2 times');
    const deep = api.RespondActivityTaskFailedRequest.encode({
      taskToken: bytes(1),
      failure: { cause: { message: 'x' } },
    }).finish();
    // The cause's message given twice, two levels down: Failure(2) → cause(4) → message(1).
    const causeTwice = cat(ld(1, bytes(1)), ld(2, ld(4, cat(ld(1, 'x'), ld(1, 'y')))));
    expect(refusal(() => checkMessage(type('RespondActivityTaskFailedRequest'), deep))).toBe('passed');
    expect(refusal(() => checkMessage(type('RespondActivityTaskFailedRequest'), causeTwice))).toMatch(
      'Failure.message (field 1) occurs 2 times',
    );
  });

  it('refuses unknown fields at every depth', () => {
    expect(refusal(() => checkMessage(heartbeat, cat(ld(1, 't'), varintField(15, 1))))).toMatch(
      'has no field 15',
    );
    expect(
      refusal(() => checkMessage(poll, cat(ld(1, 'ns'), ld(2, cat(ld(1, 'q'), varintField(9, 1)))))),
    ).toMatch('TaskQueue has no field 9');
  });

  it('refuses wrong wire types, a oneof set twice and invalid UTF-8', () => {
    // namespace (a string) as a varint: Go files it as unknown and reads no namespace.
    expect(refusal(() => checkMessage(heartbeat, cat(ld(1, 't'), varintField(4, 1))))).toMatch(
      'wire type 0, not 2',
    );
    // weak_consistency (a bool) sent "packed": protobufjs would read the length as the value.
    const describe = type('DescribeNamespaceRequest');
    expect(refusal(() => checkMessage(describe, cat(ld(1, 'ns'), ld(3, bytes(1)))))).toMatch(
      'wire type 2, not 0',
    );
    const twoInfos = cat(ld(1, bytes(1)), ld(2, cat(ld(5, ld(1, 'X')), ld(7, bytes()))));
    expect(refusal(() => checkMessage(type('RespondActivityTaskFailedRequest'), twoInfos))).toMatch(
      'failureInfo is set 2 ways',
    );
    expect(refusal(() => checkMessage(describe, ld(1, bytes(0x6e, 0xff))))).toMatch('not valid UTF-8');
    expect(refusal(() => checkMessage(describe, ld(1, bytes(0xed, 0xa0, 0x80))))).toMatch('not valid UTF-8');
  });

  it('takes repeated numbers packed or unpacked, never both, and refuses map keys given twice', () => {
    const shutdown = type('ShutdownWorkerRequest');
    const packed = cat(ld(1, 'ns'), ld(8, bytes(1, 2)));
    const unpacked = cat(ld(1, 'ns'), varintField(8, 1), varintField(8, 2));
    expect(refusal(() => checkMessage(shutdown, packed))).toBe('passed');
    expect(refusal(() => checkMessage(shutdown, unpacked))).toBe('passed');
    expect(refusal(() => checkMessage(shutdown, cat(packed, varintField(8, 3))))).toMatch(
      'mixes packed and unpacked',
    );
    expect(refusal(() => checkMessage(shutdown, cat(packed, ld(8, bytes(3)))))).toMatch('packed in 2 runs');
    expect(refusal(() => checkMessage(shutdown, cat(ld(1, 'ns'), ld(8, bytes(0x80)))))).toMatch(
      'truncated varint',
    );
    const entry = (key: string, value: string) => ld(1, cat(ld(1, key), ld(2, value)));
    const payloads = (...entries: Uint8Array[]) => cat(ld(1, bytes(1)), ld(2, ld(1, cat(...entries))));
    expect(refusal(() => checkMessage(heartbeat, payloads(entry('encoding', 'a'), entry('x', 'b'))))).toBe(
      'passed',
    );
    expect(
      refusal(() => checkMessage(heartbeat, payloads(entry('encoding', 'a'), entry('encoding', 'b')))),
    ).toMatch('repeats map key "encoding"');
  });

  it('refuses nesting past its depth limit', () => {
    let failure: Uint8Array = ld(1, 'bottom');
    for (let i = 0; i < 70; i++) failure = ld(4, failure);
    expect(refusal(() => checkMessage(messageType('temporal.api.failure.v1.Failure'), failure))).toMatch(
      'nested deeper than 64',
    );
  });
});

describe('gRPC framing', () => {
  const message = Buffer.from(api.DescribeNamespaceRequest.encode({ namespace: 'ns' }).finish());
  const frame = (flag: number, payload: Buffer) => {
    const f = grpcFrame(payload);
    f[0] = flag;
    return f;
  };

  it('takes one message, plain or gzip, and refuses every other shape', () => {
    expect(singleGrpcMessage(frame(0, message), undefined)).toEqual(message);
    expect(singleGrpcMessage(frame(1, gzipSync(message)), 'gzip')).toEqual(message);
    expect(singleGrpcMessage(frame(0, message), 'gzip')).toEqual(message);
    const refused = (body: Buffer, encoding?: string | string[]) =>
      refusal(() => singleGrpcMessage(body, encoding));
    expect(refused(Buffer.concat([frame(0, message), frame(0, message)]))).toMatch(
      'more than one gRPC message',
    );
    expect(refused(Buffer.alloc(0))).toMatch('no complete gRPC message');
    expect(refused(frame(0, message).subarray(0, 8))).toMatch('runs past the end');
    expect(refused(frame(2, message))).toMatch('compressed flag is 2');
    expect(refused(frame(1, gzipSync(message)))).toMatch('without grpc-encoding gzip');
    expect(refused(frame(1, gzipSync(message)), 'deflate')).toMatch('grpc-encoding deflate is not accepted');
    expect(refused(frame(1, gzipSync(message)), ['gzip', 'gzip'])).toMatch('is not accepted');
    expect(refused(frame(1, message), 'gzip')).toMatch('gzip:');
    expect(refused(frame(1, gzipSync(Buffer.alloc(5 * 1024 * 1024))), 'gzip')).toMatch('gzip:');
  });

  it('asks Temporal only for response encodings the gate reads', () => {
    expect(readableAcceptEncoding('identity,deflate,gzip')).toBe('identity,gzip');
    expect(readableAcceptEncoding('zstd')).toBe('identity');
    expect(readableAcceptEncoding(undefined)).toBe('identity');
  });
});

describe('the token the gate records from a poll response', () => {
  const response = (token: Uint8Array) =>
    Buffer.from(api.PollActivityTaskQueueResponse.encode({ taskToken: token, activityId: 'x' }).finish());
  const token = bytes(9, 8, 7);

  it('is the one task token of the one message, plain or gzip', () => {
    expect(issuedTokenOf(grpcFrame(response(token)), undefined)).toBe(Buffer.from(token).toString('base64'));
    const zipped = grpcFrame(gzipSync(response(token)));
    zipped[0] = 1;
    expect(issuedTokenOf(zipped, 'gzip')).toBe(Buffer.from(token).toString('base64'));
  });

  it('is nothing when the response could be read two ways, or holds no token', () => {
    expect(issuedTokenOf(grpcFrame(cat(response(token), ld(1, 'other'))), undefined)).toBeUndefined();
    expect(issuedTokenOf(grpcFrame(response(bytes())), undefined)).toBeUndefined(); // an empty poll
    expect(
      issuedTokenOf(cat(grpcFrame(response(token)), grpcFrame(response(token))), undefined),
    ).toBeUndefined();
    expect(issuedTokenOf(grpcFrame(cat(response(token), bytes(0x08))), undefined)).toBeUndefined();
    expect(issuedTokenOf(grpcFrame(bytes(0x09, 1, 2, 3, 4, 5, 6, 7, 8)), undefined)).toBeUndefined();
  });
});
