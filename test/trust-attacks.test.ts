/**
 * Trust that does not lean on Temporal being friendly, attacked through a raw Temporal client (any
 * local program can be one): approvals from a revoked device travelling with records cut before the
 * revocation; the device registry replaced with a forged root, or rolled back; a cancelled plan
 * reset to after an approval, and its old approval replayed; a plan started directly that names
 * another plan's workspace. Real Temporal, real workers, jail sandbox.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowFailedError } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import Long from 'long';
import { connectTemporalWorker } from '../services/temporal/worker-connection.js';
import type { ShellStepInput } from '../activities/executor.js';
import { signApproval } from '../core/approval/approval.js';
import { toBase64 } from '../core/bytes.js';
import { signDeviceRecord } from '../core/devices/records.js';
import { generateKeyPair } from '../core/keys.js';
import { planWorkflowId, REGISTRY_WORKFLOW_ID, TASK_QUEUES } from '../core/names.js';
import { stepDigest } from '../core/plan/digest.js';
import type { StepResult } from '../core/plan/state.js';
import type { ShellStep } from '../core/plan/types.js';
import { validatePlan } from '../core/plan/validate.js';
import { planSteps } from '../core/plan/walk.js';
import { introduceDevice, registryView, restoreRegistry, revokeDevice } from '../services/devices.js';
import { UserFacingError } from '../services/errors.js';
import { cancelPlan, decide, submitPlan } from '../services/plans.js';
import { planTimeline } from '../services/history/index.js';
import { TrustAnchorFile } from '../services/trust-anchor.js';
import { pinnedRootReader } from '../workers/key-file.js';
import type { PlanWorkflowInput } from '../workflows/messages.js';
import { get, login, startApi, type ApiUnderTest } from './support/api.js';
import { stepOf, waitForHistory, waitForStep, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let api: ApiUnderTest;
let rogue: Worker;
let rogueConnection: NativeConnection;
let rogueRunning: Promise<void>;

beforeAll(async () => {
  stack = await startTestStack('trust-attacks');
  api = await startApi(stack);
  // A compromised control plane: it holds the control worker's certificate.
  rogueConnection = await connectTemporalWorker(stack.config, 'control');
  rogue = await Worker.create({
    connection: rogueConnection,
    namespace: stack.config.namespace,
    taskQueue: 'rogue',
    workflowsPath: fileURLToPath(new URL('./support/rogue-workflows.ts', import.meta.url)),
  });
  rogueRunning = rogue.run();
});
afterAll(async () => {
  rogue?.shutdown();
  await rogueRunning;
  await rogueConnection?.close();
  await api?.close();
  await stack?.close();
});

const nonce = () => randomBytes(18).toString('base64url');
const executorChainLength = async () =>
  (
    (
      JSON.parse(await readFile(stack.paths.executorChain, 'utf8').catch(() => '{}')) as {
        records?: unknown[];
      }
    ).records ?? []
  ).length;

/** Runs `input` through the attacker's workflow straight onto the executor's queue; resolves to what happened. */
function runRogue(input: ShellStepInput): Promise<string> {
  return stack.client.workflow
    .execute('rogueRunWorkflow', {
      workflowId: `rogue-${randomBytes(4).toString('hex')}`,
      taskQueue: 'rogue',
      args: [input],
    })
    .then(
      (result: StepResult) => `ran: exit ${result.exitCode}`,
      (e: unknown) => String((e as WorkflowFailedError).cause?.cause ?? e),
    );
}

function shellStep(run: string): ShellStep {
  return planSteps(validatePlan({ name: 'p', steps: [{ id: 's', run }] }))[0] as ShellStep;
}

describe('revocation reaches the executor, whatever records a step arrives with', () => {
  it('refuses an approval by a revoked device sent with records cut before the revocation, signed before or after it', async () => {
    const lost = { ...generateKeyPair(), name: 'lost phone' };
    await introduceDevice(stack.client, stack.root, lost);
    const before = (await registryView(stack.client)).records;
    const workflowId = planWorkflowId(`victim${randomBytes(3).toString('hex')}`);
    const step = shellStep('echo revoked-but-approved');
    const digest = stepDigest(step, workflowId.slice(5));
    const approval = () =>
      signApproval(
        {
          workflowId,
          runId: 'r'.repeat(36),
          stepPath: 's',
          stepDigest: digest,
          decision: 'approve',
          nowMs: Date.now(),
          nonce: nonce(),
        },
        lost,
      );
    const signedBefore = approval();
    await revokeDevice(stack.client, stack.root, lost.keyId, 'stolen');
    // The registry tells the executor; it keeps its own chain from then on.
    const length = (await registryView(stack.client)).records.length;
    await expect.poll(executorChainLength, { timeout: 10_000 }).toBe(length);
    for (const envelope of [signedBefore, approval()]) {
      const outcome = await runRogue({
        workflowId,
        runId: 'r'.repeat(36),
        workspaceId: workflowId.slice(5),
        step,
        digest,
        approvals: [envelope],
        trustRecords: before,
      });
      expect(outcome).toMatch(/\[revoked_device\] device "lost phone" .* was revoked at/);
    }
  });

  it('refuses records that fork from its chain', async () => {
    const forged = generateKeyPair();
    const forgedRoot = signDeviceRecord(
      {
        type: 'enroll-root',
        publicKey: toBase64(forged.publicKey),
        name: 'forged root',
        at: new Date().toISOString(),
      },
      forged,
    );
    const workflowId = planWorkflowId(`forked${randomBytes(3).toString('hex')}`);
    const step = shellStep('echo forged');
    const digest = stepDigest(step, workflowId.slice(5));
    const outcome = await runRogue({
      workflowId,
      runId: 'r'.repeat(36),
      workspaceId: workflowId.slice(5),
      step,
      digest,
      approvals: [
        signApproval(
          {
            workflowId,
            runId: 'r'.repeat(36),
            stepPath: 's',
            stepDigest: digest,
            decision: 'approve',
            nowMs: Date.now(),
            nonce: nonce(),
          },
          forged,
        ),
      ],
      trustRecords: [forgedRoot],
    });
    expect(outcome).toMatch(/device records are not the executor's chain: \[untrusted_root\]/);
  });
});

describe('the device registry replaced or rolled back', () => {
  it('is refused by the API and the CLI until it is restored from the chain held here', async () => {
    const real = (await registryView(stack.client)).records;
    const cliAnchor = new TrustAnchorFile(stack.paths.cliChain, pinnedRootReader(stack.paths.pinnedRoot));
    await registryView(stack.client, cliAnchor); // the CLI has seen the real chain
    const session = await login(api, stack.root);
    expect((await get(api, session, '/api/devices')).statusCode).toBe(200);

    // A forged registry: terminated, started again with a self-signed root of the attacker's.
    const forged = generateKeyPair();
    const handle = stack.client.workflow.getHandle(REGISTRY_WORKFLOW_ID);
    await handle.terminate('attacker');
    await stack.client.workflow.start('deviceRegistryWorkflow', {
      workflowId: REGISTRY_WORKFLOW_ID,
      taskQueue: TASK_QUEUES.control,
      args: [
        {
          records: [
            signDeviceRecord(
              {
                type: 'enroll-root',
                publicKey: toBase64(forged.publicKey),
                name: 'forged',
                at: new Date().toISOString(),
              },
              forged,
            ),
          ],
        },
      ],
    });
    const refused = await get(api, session, '/api/devices');
    expect(refused.statusCode).toBe(503);
    expect(refused.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'registry_untrusted',
      message: expect.stringContaining('start at another root than the pinned'),
    });
    await expect(registryView(stack.client, cliAnchor)).rejects.toThrow(/countersign registry restore/);

    // Rolled back: the real root, without the latest records (a revocation, say).
    await stack.client.workflow.getHandle(REGISTRY_WORKFLOW_ID).terminate('attacker');
    await stack.client.workflow.start('deviceRegistryWorkflow', {
      workflowId: REGISTRY_WORKFLOW_ID,
      taskQueue: TASK_QUEUES.control,
      args: [{ records: real.slice(0, 2) }],
    });
    const rolledBack = await registryView(stack.client, cliAnchor).catch((e: unknown) => e);
    expect(rolledBack).toBeInstanceOf(UserFacingError);
    expect((rolledBack as Error).message).toMatch(
      new RegExp(`has 2 records, fewer than the ${real.length} this process has seen: it was rolled back`),
    );

    const restored = await restoreRegistry(stack.client, await cliAnchor.held(), stack.root.keyId);
    expect(restored).toEqual({ had: 2, restored: real.length });
    expect((await get(api, session, '/api/devices')).statusCode).toBe(200);
  });
});

describe('a reset history', () => {
  it('cannot run a step of a cancelled plan on the approval given before the cancel (the reset replays it)', async () => {
    await stack.stopWorkers();
    await stack.startWorkers({ control: true });
    const { planId, workflowId } = await submitPlan(
      stack.client,
      { name: 'reset me', steps: [{ id: 'b', run: 'echo revived' }] },
      { proposer: 'test' },
    );
    const view = await waitForStep(stack.client, planId, 'b', 'awaiting_approval');
    await decide(stack.client, stack.root, planId, 'b', { decision: 'approve' });
    await waitForStep(stack.client, planId, 'b', 'running');
    await cancelPlan(stack.client, planId);
    // The workflow has taken the cancel (its queued step is cancelled) before an executor could start it.
    await waitForHistory(stack.client, workflowId, (e) => !!e.activityTaskCancelRequestedEventAttributes);
    // The executor is back: the plan's end (its workspace released) reaches its ledger.
    await stack.startWorkers({ executor: true });
    await stack.client.workflow
      .getHandle(workflowId)
      .result()
      .catch(() => undefined);

    const events = (await stack.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const accepted = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    const after = events.slice(accepted).find((e) => e.workflowTaskCompletedEventAttributes)!;
    const { runId } = await stack.client.workflow.getHandle(workflowId).describe();
    await stack.client.workflowService.resetWorkflowExecution({
      namespace: stack.config.namespace,
      workflowExecution: { workflowId, runId },
      workflowTaskFinishEventId: Long.fromValue(after.eventId!),
      requestId: randomBytes(16).toString('hex'),
      reason: 'attacker: revive the approved step',
    });
    const revived = await waitForView(stack.client, planId, (v) =>
      ['failed', 'succeeded'].includes(stepOf(v, 'b').status),
    );
    expect(stepOf(revived, 'b').status).toBe('failed');
    expect(stepOf(revived, 'b').error).toMatch(
      /plan plan-[a-z0-9]+ ended here at .* \(it closed cancelled\); approvals given before then count for nothing/,
    );
    const history = await planTimeline(stack.client, planId);
    expect(history.entries.some((e) => e.kind === 'plan_reset')).toBe(true);
    expect(view.steps[0]?.path).toBe('b');
  });

  it("refuses a step started directly that names another plan's workspace", async () => {
    const victim = await submitPlan(
      stack.client,
      { name: 'victim', steps: [{ id: 'v', gate: 'wait' }] },
      { proposer: 'test' },
    );
    await waitForStep(stack.client, victim.planId, 'v', 'awaiting_approval');
    const { records } = await registryView(stack.client);
    const workflowId = planWorkflowId(`attacker${randomBytes(3).toString('hex')}`);
    await stack.client.workflow.start('planWorkflow', {
      workflowId,
      taskQueue: TASK_QUEUES.control,
      args: [
        {
          planId: workflowId.slice(5),
          plan: { name: 'plant', steps: [{ id: 'plant', run: 'echo pwned > deploy.sh' }] },
          workspaceId: victim.planId,
          proposer: 'attacker',
          trustRecords: records,
        } satisfies PlanWorkflowInput,
      ],
    });
    const view = await waitForStep(stack.client, workflowId, 'plant', 'awaiting_approval');
    // Even a person's approval (shown the step, digest and all) does not move it into another workspace.
    await decide(stack.client, stack.root, workflowId, 'plant', { decision: 'approve' });
    const ended = await waitForView(stack.client, workflowId, (v) => stepOf(v, 'plant').status === 'failed');
    expect(stepOf(ended, 'plant').error).toContain(`may not use workspace ${victim.planId}`);
    expect(view.workspaceId).toBe(victim.planId);
    await cancelPlan(stack.client, victim.planId);
  });
});
