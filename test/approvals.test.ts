/**
 * Approvals through the real Update path: forged, stale and replayed envelopes are refused
 * before anything enters history, and the plan keeps waiting for a valid one.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { signApproval, type ApprovalRequest } from '../core/approval/approval.js';
import { fromBase64, toBase64 } from '../core/bytes.js';
import type { Envelope } from '../core/approval/dsse.js';
import { generateKeyPair, type KeyPair } from '../core/keys.js';
import { introduceDevice, registryView, revokeDevice } from '../services/devices.js';
import { refusalOf } from '../services/errors.js';
import { cancelPlan, decide, planView, submitPlan } from '../services/plans.js';
import { readKeyFile } from '../workers/key-file.js';
import { approveUpdate } from '../workflows/messages.js';
import { grantAutoSteps, submitGranted } from './support/grants.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { stepStatus, waitForStep, waitForView } from './support/plans.js';

let stack: TestStack;
let second: KeyPair & { name: string };
beforeAll(async () => {
  stack = await startTestStack('approvals');
  second = { ...generateKeyPair(), name: 'second phone' };
  await introduceDevice(stack.client, stack.root, second);
});
afterAll(async () => stack?.close());

const nonce = () => randomBytes(18).toString('base64url');

async function submitEnvelope(workflowId: string, envelope: Envelope) {
  const { records } = await registryView(stack.client);
  return stack.client.workflow
    .getHandle(workflowId)
    .executeUpdate(approveUpdate, { args: [{ envelope, deviceRecords: records }] });
}

async function refusal(workflowId: string, envelope: Envelope): Promise<string | undefined> {
  return submitEnvelope(workflowId, envelope).then(
    () => undefined,
    (e: unknown) => refusalOf(e)?.code,
  );
}

describe('forged and stale approvals', () => {
  it('refuses each with a distinct reason, keeps history clean, and still accepts a valid approval', async () => {
    const { planId, workflowId } = await submitPlan(
      stack.client,
      { name: 'guarded', steps: [{ id: 'deploy', run: 'echo deployed' }] },
      { proposer: 'test' },
    );
    const view = await waitForStep(stack.client, planId, 'deploy', 'awaiting_approval');
    const step = view.steps[0]!;
    const base: ApprovalRequest = {
      workflowId,
      runId: view.runId,
      stepPath: 'deploy',
      stepDigest: step.digest,
      decision: 'approve',
      nowMs: Date.now(),
      nonce: nonce(),
    };
    const sign = (over: Partial<ApprovalRequest>, key: KeyPair = stack.root) =>
      signApproval({ ...base, nonce: nonce(), ...over }, key);

    const flippedSignature = sign({});
    const sig = fromBase64(flippedSignature.signatures[0].sig);
    sig[10]! ^= 1;
    flippedSignature.signatures[0].sig = toBase64(sig);
    const policy = (await readKeyFile(stack.paths.policyKey))!;
    const revoked = { ...generateKeyPair(), name: 'lost phone' };
    await introduceDevice(stack.client, stack.root, revoked);
    await revokeDevice(stack.client, stack.root, revoked.keyId, 'phone lost');

    const cases: [string, Envelope][] = [
      ['bad_signature', flippedSignature],
      ['unknown_device', sign({}, generateKeyPair())],
      ['revoked_device', sign({}, revoked)],
      ['wrong_digest', sign({ stepDigest: 'ab'.repeat(32) })],
      ['wrong_run', sign({ runId: 'another-run' })],
      ['wrong_workflow', sign({ workflowId: 'plan-somebody-else' })],
      ['unknown_step', sign({ stepPath: 'nope' })],
      ['expired', sign({ nowMs: Date.now() - 20 * 60_000, ttlMs: 60_000 })],
      ['not_yet_valid', sign({ nowMs: Date.now() + 3_600_000 })],
      ['lifetime_too_long', sign({ ttlMs: 48 * 3_600_000 })],
      ['policy_key_not_allowed', sign({}, policy)],
    ];
    const seen: Record<string, string | undefined> = {};
    for (const [expected, envelope] of cases) seen[expected] = await refusal(workflowId, envelope);
    expect(seen).toEqual(Object.fromEntries(cases.map(([code]) => [code, code])));

    // Nothing refused reached the history; the step is still waiting.
    const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
    expect(history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length).toBe(0);
    expect(stepStatus(await planView(stack.client, planId), 'deploy')).toBe('awaiting_approval');

    const valid = sign({});
    await submitEnvelope(workflowId, valid);
    expect(await refusal(workflowId, valid)).toMatch(/nonce_reused|not_awaiting/);
    await stack.client.workflow.getHandle(workflowId).result();
  });

  it('refuses a replayed envelope and a second vote by the same device while a quorum is open', async () => {
    const plan = {
      name: 'two-keys',
      steps: [{ id: 'drop-db', run: 'echo dropped', approval: { quorum: 2 } }],
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    const view = await waitForStep(stack.client, planId, 'drop-db', 'awaiting_approval');
    const request: ApprovalRequest = {
      workflowId,
      runId: view.runId,
      stepPath: 'drop-db',
      stepDigest: view.steps[0]!.digest,
      decision: 'approve',
      nowMs: Date.now(),
      nonce: nonce(),
    };
    const first = signApproval(request, stack.root);
    expect((await submitEnvelope(workflowId, first)).stepStatus).toBe('awaiting_approval');
    expect(await refusal(workflowId, first)).toBe('nonce_reused');
    expect(await refusal(workflowId, signApproval({ ...request, nonce: nonce() }, stack.root))).toBe(
      'duplicate_approver',
    );
    expect(stepStatus(await planView(stack.client, planId), 'drop-db')).toBe('awaiting_approval');
    await decide(stack.client, second, planId, 'drop-db', { decision: 'approve' });
    const result = await stack.client.workflow.getHandle(workflowId).result();
    expect(result.status).toBe('succeeded');
    const approvers = (await planView(stack.client, planId)).steps[0]!.approvals.map((a) => a.deviceName);
    expect(approvers.sort()).toEqual(['second phone', 'test phone']);
  });

  it('refuses a device after it is revoked', async () => {
    const phone = { ...generateKeyPair(), name: 'soon revoked' };
    await introduceDevice(stack.client, stack.root, phone);
    const { planId } = await submitPlan(
      stack.client,
      {
        name: 'revocation',
        steps: [
          { id: 'a', gate: 'ok?' },
          { id: 'b', gate: 'ok?' },
        ],
      },
      { proposer: 'test' },
    );
    await waitForStep(stack.client, planId, 'a', 'awaiting_approval');
    await decide(stack.client, phone, planId, 'a', { decision: 'approve' });
    await waitForStep(stack.client, planId, 'b', 'awaiting_approval');
    await revokeDevice(stack.client, stack.root, phone.keyId, 'left the team');
    await expect(decide(stack.client, phone, planId, 'b', { decision: 'approve' })).rejects.toThrow(
      /revoked_device/,
    );
    await decide(stack.client, stack.root, planId, 'b', { decision: 'approve' });
  });
});

describe('deadlines', () => {
  // Reminders (at least a minute apart) are timed in notify-deadlines.test.ts, on the time-skipping server.
  it('denies a step when nobody decides in time (fail-closed) and refuses a late approval', async () => {
    const plan = {
      name: 'deadline',
      steps: [{ id: 'late', run: 'touch ran', approval: { timeout: '3s' } }],
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    const waiting = await waitForStep(stack.client, planId, 'late', 'awaiting_approval');
    const error = await stack.client.workflow
      .getHandle(workflowId)
      .result()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(String((error as WorkflowFailedError).cause?.message)).toContain(
      'no decision within 3s: denied (fail-closed)',
    );
    const view = await planView(stack.client, planId);
    expect(stepStatus(view, 'late')).toBe('timed_out');
    expect(view.steps[0]!.remindersSent).toBe(0);
    const notices = (await readFile(stack.paths.gateLog, 'utf8'))
      .split('\n')
      .filter((l) => l.includes(workflowId))
      .map((l) => JSON.parse(l) as { kind: string });
    // The first notice, and the "decided" one that says the deadline denied it.
    expect(notices.filter((n) => n.kind !== 'decided').length).toBe(1);
    expect(notices.filter((n) => n.kind === 'decided').length).toBe(1);
    const lateApproval = signApproval(
      {
        workflowId,
        runId: waiting.runId,
        stepPath: 'late',
        stepDigest: waiting.steps[0]!.digest,
        decision: 'approve',
        nowMs: Date.now(),
        nonce: nonce(),
      },
      stack.root,
    );
    await expect(submitEnvelope(workflowId, lateApproval)).rejects.toThrow();
  });
});

describe('cancellation', () => {
  it('cancels a plan waiting for approval, and one whose step is running (the process is killed)', async () => {
    const waiting = await submitPlan(
      stack.client,
      { name: 'cancel-waiting', steps: [{ id: 'w', run: 'true' }] },
      { proposer: 'test' },
    );
    await waitForStep(stack.client, waiting.planId, 'w', 'awaiting_approval');
    await cancelPlan(stack.client, waiting.planId);
    await expect(stack.client.workflow.getHandle(waiting.workflowId).result()).rejects.toThrow(
      WorkflowFailedError,
    );
    expect(stepStatus(await planView(stack.client, waiting.planId), 'w')).toBe('cancelled');

    const plan = {
      name: 'cancel-running',
      steps: [
        { id: 'long', run: 'echo started; sleep 60; touch survived', approval: 'auto' },
        { id: 'after', run: 'true' },
      ],
    };
    // `long` runs on an exact grant the root device signed, without a person.
    const running = await submitGranted(stack.client, stack.root, plan);
    await waitForView(stack.client, running.planId, (v) => stepStatus(v, 'long') === 'running');
    await new Promise((r) => setTimeout(r, 500));
    await cancelPlan(stack.client, running.planId);
    const description = await stack.client.workflow
      .getHandle(running.workflowId)
      .result()
      .then(
        () => 'completed',
        () => 'failed',
      );
    expect(description).toBe('failed');
    const view = await planView(stack.client, running.planId);
    expect(stepStatus(view, 'long')).toBe('cancelled');
    expect(stepStatus(view, 'after')).toBe('cancelled');
    expect((await stack.client.workflow.getHandle(running.workflowId).describe()).status.name).toBe(
      'CANCELLED',
    );
  });
});

describe('continue-as-new', () => {
  it('carries step results, approvals and nonces across runs of a long plan', async () => {
    const steps = Array.from({ length: 12 }, (_, i) => ({
      id: `s${i}`,
      run: `echo ${i} >> count`,
      approval: 'auto',
    }));
    const plan = {
      name: 'long',
      steps: [...steps, { id: 'human', run: 'wc -l < count' }],
    };
    // Each `echo i >> count` step runs on an exact standing approval; `human` waits for a person.
    const grants = await grantAutoSteps(stack.client, stack.root, plan);
    expect(grants).toHaveLength(12);
    const { planId, workflowId } = await submitPlan(stack.client, plan, {
      proposer: 'test',
      signer: { key: stack.root, proposer: { device: stack.root.keyId } },
      continueAsNewAfterEvents: 40,
    });
    const view = await waitForStep(stack.client, planId, 'human', 'awaiting_approval', 60_000);
    expect(view.continuedAsNew).toBeGreaterThan(0);
    // An approval signed for the plan's run id stays valid across continue-as-new.
    await decide(stack.client, stack.root, planId, 'human', { decision: 'approve' });
    const result = await stack.client.workflow.getHandle(workflowId).result();
    expect(result.steps.every((s: { status: string }) => s.status === 'succeeded')).toBe(true);
    const final = await planView(stack.client, planId);
    expect(final.steps.find((s) => s.path === 'human')?.result?.outputTail.trim()).toBe('12');
    expect(final.steps.filter((s) => s.approvals[0]?.auto).length).toBe(12);
    // Each ran on its own grant, including those applied in later runs of the chain.
    expect(final.steps.slice(0, 12).map((s) => s.approvals[0]?.grant?.grantId)).toEqual(
      grants.map((g) => g.grantId),
    );
    expect(final.steps.find((s) => s.path === 'human')?.approvals[0]).toMatchObject({
      deviceName: 'test phone',
      auto: false,
    });
  });
});
