/**
 * The worker gate reads requests the way Temporal's server does (issue 15, finding 2). From the
 * attacker's side — a process holding the executor's client certificate, speaking raw gRPC to the
 * real gate in front of the real Temporal — every request that two protobuf decoders could read
 * differently is refused: task tokens given twice ([real][forged] completed an activity the gate
 * never handed out: Temporal keeps the last token, the old gate checked the first), namespaces
 * and task queues given twice, unknown fields, wrong wire types, two gRPC messages in one body,
 * gzip bodies carrying the same tricks, truncated varints. Each refusal has a control: the same
 * request, made honest, passes the gate. And the real executor (the SDK's Rust core) still passes.
 */
import http2, { type ClientHttp2Session } from 'node:http2';
import { gzipSync } from 'node:zlib';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TASK_QUEUES } from '../core/names.js';
import { temporalTls } from '../services/temporal/connection.js';
import { connectTemporalWorker } from '../services/temporal/worker-connection.js';
import { planView } from '../services/plans.js';
import { startWorkerGate, type WorkerGate } from '../sandbox/gate/worker-gate.js';
import { createExecutorWorker } from '../workers/executor.js';
import { submitGranted } from './support/grants.js';
import { stepStatus, waitForStep } from './support/plans.js';
import { pairTestRoot, startTestStack, type TestStack } from './support/stack.js';

const api = proto.temporal.api.workflowservice.v1;
const SERVICE = '/temporal.api.workflowservice.v1.WorkflowService/';
const PERMISSION_DENIED = 7;

let stack: TestStack;
let gate: WorkerGate;
let attacker: ClientHttp2Session;
const gateLog: string[] = [];

beforeAll(async () => {
  stack = await startTestStack('gate-wire', { workers: false, pair: false });
  gate = await startWorkerGate({
    upstream: stack.config.temporalAddress,
    tlsDir: stack.config.temporalTlsDir,
    namespace: stack.config.namespace,
    taskQueue: TASK_QUEUES.sandbox,
    log: (l) => gateLog.push(l),
  });
  await stack.startWorkers({ control: true });
  await pairTestRoot(stack);
  // The attacker holds the executor's certificate: it got past mutual TLS, as a compromised executor would.
  const tls = (await temporalTls(stack.config, 'executor'))!;
  attacker = http2.connect(`https://${gate.address}`, {
    ca: tls.serverRootCACertificate,
    cert: tls.clientCertPair.crt,
    key: tls.clientCertPair.key,
    servername: tls.serverNameOverride,
  });
  attacker.on('error', () => undefined);
});
afterAll(async () => {
  attacker?.destroy();
  await gate?.close();
  await stack?.close();
});

// ---- raw protobuf and gRPC, the attacker's tools ----
const varint = (n: number): number[] =>
  n < 0x80 ? [n] : [(n & 0x7f) | 0x80, ...varint(Math.floor(n / 128))];
/** A length-delimited field. */
const ld = (number: number, content: Uint8Array | string) => {
  const data = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
  return Buffer.concat([Buffer.from([...varint((number << 3) | 2), ...varint(data.length)]), data]);
};
const cat = (...parts: Uint8Array[]) => Buffer.concat(parts);
/** One gRPC message: flag 0 (or `flag`), big-endian length, payload. */
const frame = (message: Uint8Array, flag = 0) => {
  const out = Buffer.alloc(5 + message.length);
  out[0] = flag;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
};

interface Answer {
  status: number;
  message: string;
  data: Buffer;
}

/** One raw unary call through the gate. */
function call(method: string, body: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = attacker.request({
      ':method': 'POST',
      ':path': SERVICE + method,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    const chunks: Buffer[] = [];
    let status = -1;
    let message = '';
    const read = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] === undefined) return;
      status = Number(h['grpc-status']);
      try {
        message = decodeURIComponent(String(h['grpc-message'] ?? ''));
      } catch {
        message = String(h['grpc-message']);
      }
    };
    request.on('response', read);
    request.on('trailers', read);
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve({ status, message, data: Buffer.concat(chunks) }));
    request.on('error', reject);
    request.end(body);
  });
}

const refusedCount = () => [...gate.refused.values()].reduce((a, b) => a + b, 0);

/** The call is refused by the gate itself: PERMISSION_DENIED, its message, counted, logged. */
async function expectRefused(method: string, body: Buffer, why: RegExp, headers?: Record<string, string>) {
  const before = refusedCount();
  const logged = gateLog.length;
  const answer = await call(method, body, headers);
  expect({ status: answer.status, message: answer.message }).toEqual({
    status: PERMISSION_DENIED,
    message: expect.stringMatching(/^worker gate: /) as string,
  });
  expect(answer.message).toMatch(why);
  expect(refusedCount()).toBe(before + 1);
  expect(gateLog.slice(logged).join('\n')).toContain(`refused ${method}`);
}

/** The call passes the gate: whatever Temporal answers, it is not the gate refusing. */
async function expectPasses(method: string, body: Buffer, headers?: Record<string, string>): Promise<Answer> {
  const before = refusedCount();
  const answer = await call(method, body, headers);
  expect(answer.message).not.toMatch(/worker gate/);
  expect(answer.status).not.toBe(PERMISSION_DENIED);
  expect(refusedCount()).toBe(before);
  return answer;
}

describe('the real executor through the strict gate', () => {
  it('heartbeats, is cancelled, completes and shuts down with nothing refused', async () => {
    const native = await connectTemporalWorker(
      { ...stack.config, temporalAddress: gate.address },
      'executor',
    );
    const { worker, runners } = await createExecutorWorker(
      { ...stack.config, temporalAddress: gate.address },
      native,
      'jail',
    );
    const running = worker.run();
    try {
      // slow heartbeats (its timeout is 6 s) until boom fails and fail-fast cancels it.
      const { planId, workflowId } = await submitGranted(stack.client, stack.root, {
        name: 'strict-gate-real-worker',
        steps: [
          { id: 'first', run: 'echo first', approval: 'auto' },
          {
            parallel: [
              { id: 'slow', run: 'sleep 30', approval: 'auto' },
              { id: 'boom', run: 'sleep 8; exit 3', approval: 'auto' },
            ],
          },
        ],
      });
      await expect(stack.client.workflow.getHandle(workflowId).result()).rejects.toThrow();
      const view = await planView(stack.client, planId);
      expect(['first', 'slow', 'boom'].map((path) => stepStatus(view, path))).toEqual([
        'succeeded',
        'cancelled',
        'failed',
      ]);
    } finally {
      worker.shutdown();
      await running;
      runners.close();
      await native.close();
    }
    expect(gateLog).toEqual([]);
  });
});

describe('an attacker with the executor certificate, speaking raw gRPC to the gate', () => {
  const namespace = () => stack.config.namespace;
  /** Tokens the gate handed out to the attacker's polls, and one it never saw (a forgery, to the gate). */
  const real: Buffer[] = [];
  let forged: Buffer;
  let keepAlive: NodeJS.Timeout;
  let planId: string;
  const direct = () => stack.client.workflowService;
  /** Whether Temporal still holds the task of `token` open (it was not completed behind the gate's back). */
  const stillOpen = (token: Buffer) =>
    direct()
      .recordActivityTaskHeartbeat({ namespace: namespace(), taskToken: token })
      .then(
        () => true,
        () => false,
      );

  const pollRequest = (queue = TASK_QUEUES.sandbox) =>
    Buffer.from(
      api.PollActivityTaskQueueRequest.encode({
        namespace: namespace(),
        taskQueue: { name: queue },
        identity: 'attacker',
      }).finish(),
    );

  beforeAll(async () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    ({ planId } = await submitGranted(stack.client, stack.root, {
      name: 'wire-attacks',
      steps: [
        {
          parallel: ids.map((id) => ({ id, run: `echo never ${id}`, approval: 'auto' })),
          failFast: false,
        },
      ],
    }));
    await Promise.all(ids.map((id) => waitForStep(stack.client, planId, id, 'running')));
    for (let i = 0; i < 4; i++) {
      const answer = await expectPasses('PollActivityTaskQueue', frame(pollRequest()), {
        'grpc-timeout': '70S',
      });
      expect({ status: answer.status, message: answer.message }).toEqual({ status: 0, message: '' });
      const token = api.PollActivityTaskQueueResponse.decode(answer.data.subarray(5)).taskToken;
      expect(token.length).toBeGreaterThan(0);
      real.push(Buffer.from(token));
    }
    // A real task token the gate never issued: what a forger builds (tokens are unsigned protobuf).
    const polled = await stack.client.connection.withDeadline(Date.now() + 70_000, () =>
      direct().pollActivityTaskQueue({
        namespace: namespace(),
        taskQueue: { name: TASK_QUEUES.sandbox },
        identity: 'test: the forger',
      }),
    );
    forged = Buffer.from(polled.taskToken);
    expect(forged.length).toBeGreaterThan(0);
    // Heartbeat every task straight to Temporal, so none times out (6 s) while the attacks run.
    keepAlive = setInterval(() => void Promise.all([...real, forged].map(stillOpen)), 2_000);
  });
  afterAll(() => clearInterval(keepAlive));

  /** The rest of each token call, without its token: namespace, identity and the call's payload. */
  const rest: Record<string, () => Uint8Array> = {
    RecordActivityTaskHeartbeat: () =>
      api.RecordActivityTaskHeartbeatRequest.encode({
        namespace: namespace(),
        identity: 'attacker',
      }).finish(),
    RespondActivityTaskCompleted: () =>
      api.RespondActivityTaskCompletedRequest.encode({
        namespace: namespace(),
        identity: 'attacker',
        result: {
          payloads: [
            {
              metadata: { encoding: Buffer.from('json/plain') },
              data: Buffer.from('"FORGED-THROUGH-THE-WORKER-GATE"'),
            },
          ],
        },
      }).finish(),
    RespondActivityTaskFailed: () =>
      api.RespondActivityTaskFailedRequest.encode({
        namespace: namespace(),
        identity: 'attacker',
        failure: {
          message: 'forged failure',
          applicationFailureInfo: { type: 'Forged', nonRetryable: true },
        },
      }).finish(),
    RespondActivityTaskCanceled: () =>
      api.RespondActivityTaskCanceledRequest.encode({
        namespace: namespace(),
        identity: 'attacker',
      }).finish(),
  };
  const withTokens = (method: string, ...tokens: Buffer[]) =>
    cat(...tokens.map((t) => ld(1, t)), rest[method]!());

  it('completes nothing as [real][forged]: Temporal would act on the forged token, the gate refuses', async () => {
    const answer = await call(
      'RespondActivityTaskCompleted',
      frame(withTokens('RespondActivityTaskCompleted', real[0]!, forged)),
    );
    // Before the fix the gate checked the first token, passed this (status 0), and Temporal
    // completed the forged task with the attacker's result (its token was dead afterwards).
    expect({ status: answer.status, forgedTaskOpen: await stillOpen(forged) }).toEqual({
      status: PERMISSION_DENIED,
      forgedTaskOpen: true,
    });
  });

  it('refuses a task token given twice, in either order, on the heartbeat and on every Respond call', async () => {
    for (const method of Object.keys(rest)) {
      for (const tokens of [
        [real[0]!, forged],
        [forged, real[0]!],
        [real[0]!, real[1]!],
      ]) {
        await expectRefused(
          method,
          frame(withTokens(method, ...tokens)),
          /taskToken \(field 1\) occurs 2 times/,
        );
      }
    }
    // Nothing reached Temporal: every task is still open.
    expect(await Promise.all([...real, forged].map(stillOpen))).toEqual([true, true, true, true, true]);
    // Control: the same heartbeat with its one real token passes, and Temporal takes it.
    expect(
      (
        await expectPasses(
          'RecordActivityTaskHeartbeat',
          frame(withTokens('RecordActivityTaskHeartbeat', real[0]!)),
        )
      ).status,
    ).toBe(0);
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(withTokens('RecordActivityTaskHeartbeat', forged)),
      /not issued to this worker/,
    );
  });

  it('refuses a namespace given twice, a task queue given twice and a name given twice inside it', async () => {
    const token = ld(1, real[0]!);
    const heartbeat = (...namespaces: string[]) => cat(token, ...namespaces.map((n) => ld(4, n)));
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(heartbeat(namespace(), 'default')),
      /namespace \(field 4\) occurs 2 times/,
    );
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(heartbeat('default', namespace())),
      /occurs 2 times/,
    );
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(heartbeat('default')),
      /namespace "default" is not allowed/,
    );
    await expectPasses('RecordActivityTaskHeartbeat', frame(heartbeat(namespace())));

    const describeNs = (...namespaces: string[]) => frame(cat(...namespaces.map((n) => ld(1, n))));
    await expectRefused(
      'DescribeNamespace',
      describeNs(namespace(), 'default'),
      /namespace \(field 1\) occurs 2 times/,
    );
    expect((await expectPasses('DescribeNamespace', describeNs(namespace()))).status).toBe(0);

    // Go merges a message given twice (name from one, kind from the other); protobufjs keeps the last.
    const queue = (name: string) => ld(2, ld(1, name));
    const poll = (...parts: Buffer[]) => frame(cat(ld(1, namespace()), ...parts));
    await expectRefused(
      'PollActivityTaskQueue',
      poll(queue(TASK_QUEUES.sandbox), queue(TASK_QUEUES.control)),
      /taskQueue \(field 2\) occurs 2 times/,
    );
    await expectRefused(
      'PollActivityTaskQueue',
      poll(queue(TASK_QUEUES.control), queue(TASK_QUEUES.sandbox)),
      /occurs 2 times/,
    );
    await expectRefused(
      'PollActivityTaskQueue',
      poll(ld(2, cat(ld(1, TASK_QUEUES.sandbox), ld(1, TASK_QUEUES.control)))),
      /TaskQueue.name \(field 1\) occurs 2 times/,
    );
    await expectRefused(
      'PollActivityTaskQueue',
      poll(ld(1, 'default'), queue(TASK_QUEUES.sandbox)),
      /occurs 2 times/,
    );
  });

  it('refuses unknown fields, at the top and inside the task queue', async () => {
    const unknownVarint = Buffer.from([15 << 3, 1]);
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(cat(withTokens('RecordActivityTaskHeartbeat', real[0]!), unknownVarint)),
      /RecordActivityTaskHeartbeatRequest has no field 15/,
    );
    await expectRefused(
      'RespondActivityTaskCompleted',
      frame(cat(withTokens('RespondActivityTaskCompleted', real[0]!), ld(1000, real[1]!))),
      /has no field 1000/,
    );
    await expectRefused(
      'PollActivityTaskQueue',
      frame(cat(ld(1, namespace()), ld(2, cat(ld(1, TASK_QUEUES.sandbox), unknownVarint)))),
      /TaskQueue has no field 15/,
    );
    await expectRefused('GetSystemInfo', frame(unknownVarint), /GetSystemInfoRequest has no field 15/);
    expect((await expectPasses('GetSystemInfo', frame(Buffer.alloc(0)))).status).toBe(0);
  });

  it('refuses packed and wire-type variants that change what a field says', async () => {
    const describeNs = (...parts: Buffer[]) => frame(cat(ld(1, namespace()), ...parts));
    // weak_consistency (bool, field 3) sent packed: Go files it as unknown, protobufjs reads it.
    await expectRefused('DescribeNamespace', describeNs(ld(3, Buffer.from([1]))), /wire type 2, not 0/);
    expect((await expectPasses('DescribeNamespace', describeNs(Buffer.from([3 << 3, 1])))).status).toBe(0);
    // The namespace as a varint: Go would see no namespace at all.
    await expectRefused('DescribeNamespace', frame(Buffer.from([1 << 3, 1])), /wire type 0, not 2/);
    // A task token as a fixed64: the server reads no token; the gate must not read one either.
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(cat(Buffer.from([(1 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]), ld(4, namespace()))),
      /wire type 1, not 2/,
    );
    // A repeated enum (ShutdownWorkerRequest.task_queue_types, field 8) mixing packed and unpacked runs.
    const shutdown = (...parts: Buffer[]) =>
      frame(cat(ld(1, namespace()), ld(7, TASK_QUEUES.sandbox), ...parts));
    await expectRefused(
      'ShutdownWorker',
      shutdown(ld(8, Buffer.from([2])), Buffer.from([8 << 3, 1])),
      /mixes packed and unpacked/,
    );
    await expectPasses('ShutdownWorker', shutdown(ld(8, Buffer.from([2]))));
    await expectRefused(
      'ShutdownWorker',
      frame(cat(ld(1, namespace()), ld(7, TASK_QUEUES.control))),
      /task queue "countersign-control"|not allowed/,
    );
  });

  it('refuses two gRPC messages in one body, odd compressed flags, and gzip bodies carrying duplicates', async () => {
    const heartbeat = (...tokens: Buffer[]) => withTokens('RecordActivityTaskHeartbeat', ...tokens);
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      cat(frame(heartbeat(real[0]!)), frame(heartbeat(forged))),
      /more than one gRPC message/,
    );
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      cat(frame(heartbeat(real[0]!)), Buffer.from([0, 0])),
      /more than one gRPC message/,
    );
    await expectRefused('RecordActivityTaskHeartbeat', frame(heartbeat(real[0]!), 2), /compressed flag is 2/);
    await expectRefused('RecordActivityTaskHeartbeat', Buffer.alloc(0), /no complete gRPC message/);
    const gzip = { 'grpc-encoding': 'gzip' };
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(gzipSync(heartbeat(real[0]!, forged)), 1),
      /occurs 2 times/,
      gzip,
    );
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(gzipSync(heartbeat(real[0]!)), 1),
      /without grpc-encoding gzip/,
    );
    await expectRefused(
      'RecordActivityTaskHeartbeat',
      frame(gzipSync(heartbeat(real[0]!)), 1),
      /deflate is not accepted/,
      {
        'grpc-encoding': 'deflate',
      },
    );
    // Controls: the same heartbeat gzip-compressed, and plain under grpc-encoding gzip, pass and are taken.
    expect(
      (await expectPasses('RecordActivityTaskHeartbeat', frame(gzipSync(heartbeat(real[0]!)), 1), gzip))
        .status,
    ).toBe(0);
    expect((await expectPasses('RecordActivityTaskHeartbeat', frame(heartbeat(real[0]!)), gzip)).status).toBe(
      0,
    );
    // Not protobuf: refused before any reading.
    await expectRefused('RecordActivityTaskHeartbeat', frame(heartbeat(real[0]!)), /content-type/, {
      'content-type': 'application/grpc+json',
    });
  });

  it('refuses malformed wire data: truncated varints, lengths past the end, groups', async () => {
    const token = ld(1, real[0]!);
    const ns = ld(4, namespace());
    const method = 'RecordActivityTaskHeartbeat';
    await expectRefused(method, frame(cat(token, ns, Buffer.from([(4 << 3) | 2, 0x80]))), /truncated varint/);
    await expectRefused(method, frame(cat(token, ns, Buffer.from([0x80]))), /truncated varint/);
    await expectRefused(
      method,
      frame(cat(ns, Buffer.from([0x0a, 0xff, 0x7f]), real[0]!)),
      /runs past the end/,
    );
    await expectRefused(method, frame(cat(token, ns, Buffer.from([(5 << 3) | 3, (5 << 3) | 4]))), /group/);
    await expectRefused(method, frame(cat(token, ns, Buffer.from([(5 << 3) | 6]))), /unknown wire type 6/);
    await expectRefused(
      method,
      frame(cat(Buffer.from([0x8a, 0x00]), ld(0, ''), ns)),
      /not minimally encoded|field number 0/,
    );
    await expectPasses(method, frame(cat(token, ns)));
  });

  it('lets each Respond call through with its one real token, and spends it', async () => {
    const before = refusedCount();
    const failed = await expectPasses(
      'RespondActivityTaskFailed',
      frame(withTokens('RespondActivityTaskFailed', real[1]!)),
    );
    expect(failed.status).toBe(0);
    const cancelled = await expectPasses(
      'RespondActivityTaskCanceled',
      frame(withTokens('RespondActivityTaskCanceled', real[2]!)),
    );
    expect(cancelled.message).not.toMatch(/worker gate/);
    const completed = await expectPasses(
      'RespondActivityTaskCompleted',
      frame(withTokens('RespondActivityTaskCompleted', real[3]!)),
    );
    expect(completed.status).toBe(0);
    expect(refusedCount()).toBe(before);
    // Spent: the same token cannot be used again through the gate.
    await expectRefused(
      'RespondActivityTaskCompleted',
      frame(withTokens('RespondActivityTaskCompleted', real[3]!)),
      /not issued to this worker/,
    );
    // The task that kept its token all along is still open, and so is the forged one.
    expect([await stillOpen(real[0]!), await stillOpen(forged)]).toEqual([true, true]);
  });
});
