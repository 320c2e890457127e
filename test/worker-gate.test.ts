/**
 * The worker gate, from the side of a compromised executor: with the executor's connection,
 * everything but the worker RPCs of the sandbox queue is refused, forged task tokens are refused,
 * and a real plan still runs with its executor connected only through the gate.
 */
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '@temporalio/client';
import { Client } from '@temporalio/client';
import { connectTemporal, temporalTls } from '../services/temporal/connection.js';
import { connectTemporalWorker } from '../services/temporal/worker-connection.js';
import { TASK_QUEUES } from '../core/names.js';
import { decide, planView, submitPlan } from '../services/plans.js';
import { startWorkerGate, type WorkerGate } from '../sandbox/gate/worker-gate.js';
import { createExecutorWorker } from '../workers/executor.js';
import { approveUpdate } from '../workflows/messages.js';
import { submitGranted } from './support/grants.js';
import { pairTestRoot, startTestStack, type TestStack } from './support/stack.js';
import { waitForStep } from './support/plans.js';

let stack: TestStack;
let gate: WorkerGate;
let gated: Connection;
let attacker: Client;
const gateLog: string[] = [];
let stopExecutor: () => Promise<void>;
/** The executor's view: Temporal is the gate. */
const throughGate = () => ({ ...stack.config, temporalAddress: gate.address });

beforeAll(async () => {
  stack = await startTestStack('gate', { workers: false, pair: false });
  gate = await startWorkerGate({
    upstream: stack.config.temporalAddress,
    tlsDir: stack.config.temporalTlsDir,
    namespace: stack.config.namespace,
    taskQueue: TASK_QUEUES.sandbox,
    log: (l) => gateLog.push(l),
  });
  await stack.startWorkers({ control: true });
  await startGatedExecutor();
  await pairTestRoot(stack);
  gated = await connectTemporal(throughGate(), 'executor');
  attacker = new Client({ connection: gated, namespace: stack.config.namespace });
});
afterAll(async () => {
  await stopExecutor?.();
  await gated?.close();
  await gate?.close();
  await stack?.close();
});

const denied = (promise: Promise<unknown>) =>
  promise.then(
    () => 'allowed',
    (e: unknown) =>
      /worker gate|PERMISSION_DENIED/.test(
        String((e as Error).message) + String((e as { cause?: Error }).cause?.message),
      )
        ? 'refused'
        : `other: ${(e as Error).message}`,
  );

/** Opens raw PollActivityTaskQueue calls through the gate and drops them, the way a crashed executor does. */
async function abandonPolls(count: number): Promise<void> {
  const tls = (await temporalTls(stack.config, 'executor'))!;
  const session = http2.connect(`https://${gate.address}`, {
    ca: tls.serverRootCACertificate,
    cert: tls.clientCertPair.crt,
    key: tls.clientCertPair.key,
    servername: tls.serverNameOverride,
  });
  session.on('error', () => undefined);
  const message = Buffer.from(
    proto.temporal.api.workflowservice.v1.PollActivityTaskQueueRequest.encode({
      namespace: stack.config.namespace,
      taskQueue: { name: TASK_QUEUES.sandbox },
      identity: 'crashed-executor',
    }).finish(),
  );
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  for (let i = 0; i < count; i++) {
    const poll = session.request({
      ':method': 'POST',
      ':path': '/temporal.api.workflowservice.v1.WorkflowService/PollActivityTaskQueue',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    poll.on('error', () => undefined);
    poll.end(frame);
  }
  await new Promise((resolve) => setTimeout(resolve, 500)); // the polls reach Temporal
  session.destroy();
}

/** An executor that reaches Temporal only through the gate. */
async function startGatedExecutor(): Promise<void> {
  const native = await connectTemporalWorker(throughGate(), 'executor');
  const { worker, runners } = await createExecutorWorker(throughGate(), native, 'jail');
  const running = worker.run();
  stopExecutor = async () => {
    worker.shutdown();
    await running.catch(() => undefined);
    runners.close();
    await native.close();
  };
}

describe('the worker gate', () => {
  it('survives an executor that vanishes mid-poll: its polls are cancelled upstream, the next task reaches a live worker', async () => {
    await stopExecutor();
    await abandonPolls(5);
    const { planId, workflowId } = await submitGranted(stack.client, stack.root, {
      name: 'after-a-crash',
      steps: [{ id: 'hi', run: 'echo still here', approval: 'auto' }],
    });
    await waitForStep(stack.client, planId, 'hi', 'running'); // its task is now in the queue
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await startGatedExecutor();
    await stack.client.workflow.getHandle(workflowId).result();
    const step = (await planView(stack.client, planId)).steps[0]!;
    expect(step.result?.outputTail).toContain('still here');
    expect(step.result?.attempt).toBe(1); // no task was handed to an abandoned poll
  });

  it('runs a real plan with the executor connected only through the gate', async () => {
    const { planId, workflowId } = await submitPlan(
      stack.client,
      { name: 'gated', steps: [{ id: 'hi', run: 'echo through the gate' }] },
      { proposer: 'test' },
    );
    await waitForStep(stack.client, planId, 'hi', 'awaiting_approval');
    await decide(stack.client, stack.root, planId, 'hi', { decision: 'approve' });
    await stack.client.workflow.getHandle(workflowId).result();
    expect((await planView(stack.client, planId)).steps[0]?.result?.outputTail).toContain('through the gate');
    // The executor needed nothing the gate refuses.
    expect(gateLog).toEqual([]);
  });

  it('refuses start, signal, update, terminate, history, list and describe from the executor side', async () => {
    const { planId, workflowId } = await submitPlan(
      stack.client,
      { name: 'victim', steps: [{ id: 'x', run: 'true' }] },
      { proposer: 'test' },
    );
    const view = await waitForStep(stack.client, planId, 'x', 'awaiting_approval');
    const handle = attacker.workflow.getHandle(workflowId);
    const results = {
      start: await denied(
        attacker.workflow.start('planWorkflow', {
          workflowId: 'plan-evil',
          taskQueue: TASK_QUEUES.control,
          args: [{}],
        }),
      ),
      signal: await denied(handle.signal('anything')),
      update: await denied(
        handle.executeUpdate(approveUpdate, { args: [{ envelope: {} as never, deviceRecords: [] }] }),
      ),
      terminate: await denied(handle.terminate('pwned')),
      cancel: await denied(handle.cancel()),
      history: await denied(handle.fetchHistory()),
      describe: await denied(handle.describe()),
      query: await denied(handle.query('countersign.planView')),
      list: await denied(attacker.workflow.list()[Symbol.asyncIterator]().next()),
    };
    expect(results).toEqual(Object.fromEntries(Object.keys(results).map((k) => [k, 'refused'])));
    expect(gateLog.some((l) => l.includes('refused StartWorkflowExecution'))).toBe(true);
    // The victim is untouched and still waits for its approval.
    expect((await planView(stack.client, planId)).steps[0]?.status).toBe(view.steps[0]?.status);
  });

  it('refuses polling another task queue and completing an activity with a forged task token', async () => {
    const service = gated.workflowService;
    expect(
      await denied(
        service.pollActivityTaskQueue({
          namespace: stack.config.namespace,
          taskQueue: { name: TASK_QUEUES.control },
        }),
      ),
    ).toBe('refused');
    expect(
      await denied(
        service.pollWorkflowTaskQueue({
          namespace: stack.config.namespace,
          taskQueue: { name: TASK_QUEUES.control },
        }),
      ),
    ).toBe('refused');
    expect(
      await denied(
        service.respondActivityTaskCompleted({
          namespace: stack.config.namespace,
          taskToken: randomBytes(64),
        }),
      ),
    ).toBe('refused');
    expect(
      await denied(
        service.recordActivityTaskHeartbeat({
          namespace: stack.config.namespace,
          taskToken: randomBytes(64),
        }),
      ),
    ).toBe('refused');
    expect(await denied(service.describeNamespace({ namespace: 'default' }))).toBe('refused');
  });

  it("lets only the executor's certificate through: every other process kind of the stack is refused at connect", async () => {
    // The control is the test above: the executor's own certificate runs a real plan through the gate.
    for (const kind of ['control', 'api', 'cli', 'setup'] as const)
      expect(await denied(connectTemporal(throughGate(), kind).then((c) => c.close()))).toBe('refused');
    for (const kind of ['control', 'api', 'cli', 'setup'])
      expect(
        gateLog.some((l) => l.includes(`only the executor's certificate passes, not countersign-${kind}`)),
      ).toBe(true);
  });
});
