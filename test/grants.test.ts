/**
 * Standing approvals on a real stack (Temporal, control worker, executor), from the attacker's
 * side: a plan cannot approve itself; a grant for `git status` covers it and nothing smuggled
 * behind it; grants that were never signed by a person, were revoked, expired, used up or replayed
 * under another id approve nothing; the policy key alone is refused by the workflow and the executor.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { connectTemporalWorker } from '../services/temporal/worker-connection.js';
import type { ShellStepInput } from '../activities/executor.js';
import { planSha256, signProposal } from '../core/approval/proposal.js';
import { stepDigest } from '../core/plan/digest.js';
import type { ShellStep } from '../core/plan/types.js';
import { planSteps } from '../core/plan/walk.js';
import type { StepResult } from '../core/plan/state.js';
import { signApproval } from '../core/approval/approval.js';
import { fromBase64, toBase64, utf8Decode, utf8ToBytes } from '../core/bytes.js';
import type { Envelope } from '../core/approval/dsse.js';
import { DeviceRegistry } from '../core/devices/registry.js';
import { signDeviceRecord } from '../core/devices/records.js';
import { generateKeyPair, type KeyPair } from '../core/keys.js';
import { planWorkflowId, TASK_QUEUES } from '../core/names.js';
import { PlanValidationError, validatePlan } from '../core/plan/validate.js';
import { addDeviceRecord, introduceDevice, registryView, revokeDevice } from '../services/devices.js';
import { refusalOf } from '../services/errors.js';
import { exportBundle } from '../services/audit/bundle.js';
import { verifyBundle } from '../services/audit/verify.js';
import { grantRecordOf, revokeGrant } from '../services/grants.js';
import { planTimeline, timelineFromRuns } from '../services/history/index.js';
import { cancelPlan, decide, planView, submitPlan } from '../services/plans.js';
import { readKeyFile } from '../workers/key-file.js';
import { approveUpdate, type PlanWorkflowInput } from '../workflows/messages.js';
import { grantFor, shell, submitSigned } from './support/grants.js';
import { stepOf, waitForStep, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let policy: KeyPair;
beforeAll(async () => {
  stack = await startTestStack('grants');
  policy = (await readKeyFile(stack.paths.policyKey))!;
});
afterAll(async () => stack?.close());

const nonce = () => randomBytes(18).toString('base64url');
const auto = (id: string, run: string) => ({ id, run, approval: 'auto' });

/** Waits until the step either ran on a grant or is waiting for a person (saying why no grant applied). */
async function settledGate(planId: string, path: string) {
  const view = await waitForView(stack.client, planId, (v) => {
    const s = stepOf(v, path);
    return (
      (s.status === 'awaiting_approval' && s.grantNote !== undefined) ||
      ['running', 'succeeded', 'failed'].includes(s.status)
    );
  });
  return stepOf(view, path);
}

describe('a plan can only ask', () => {
  it("refuses a plan's own auto-approve rules, through the service and through a raw Temporal client", async () => {
    for (const autoApprove of [
      [{ kind: 'shell' }],
      [{ id: 'pwn' }],
      [{ run: 'id' }],
      [{ runPrefix: 'echo ' }],
    ]) {
      const plan = { name: 'self-approving', policy: { autoApprove }, steps: [auto('pwn', 'id')] };
      await expect(submitPlan(stack.client, plan, { proposer: 'agent' })).rejects.toBeInstanceOf(
        PlanValidationError,
      );
      // Started directly, past every client-side check: the workflow refuses it before any gate opens.
      const workflowId = planWorkflowId(`raw${randomBytes(4).toString('hex')}`);
      const { records } = await registryView(stack.client);
      const handle = await stack.client.workflow.start('planWorkflow', {
        workflowId,
        taskQueue: TASK_QUEUES.control,
        args: [
          {
            planId: workflowId.slice(5),
            plan,
            workspaceId: workflowId.slice(5),
            proposer: 'raw',
            trustRecords: records,
          } satisfies PlanWorkflowInput,
        ],
      });
      const failure = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect(String((failure as WorkflowFailedError).cause?.message)).toContain(
        'plans can no longer approve their own steps',
      );
    }
  });

  it('without a grant, an auto step waits for a person and says why; a person approves it and it runs', async () => {
    const { planId } = await submitSigned(stack.client, stack.root, {
      name: 'ask',
      steps: [auto('hello', 'echo hello')],
    });
    const step = await settledGate(planId, 'hello');
    expect(step.status).toBe('awaiting_approval');
    expect(step.grantNote).toMatch(/no standing approval covers this step; a person decides/);
    await decide(stack.client, stack.root, planId, 'hello', { decision: 'approve' });
    const done = await waitForStep(stack.client, planId, 'hello', 'succeeded');
    expect(stepOf(done, 'hello').approvals.map((a) => a.deviceName)).toEqual(['test phone']);
  });
});

describe('a grant covers the exact step, nothing smuggled behind it', () => {
  const bypasses = [
    'git status; id',
    'git status && id',
    'git status | sh',
    'git status $(id)',
    'git status `id`',
    'git status > /workspace/x',
    'git status\nid',
    'GIT_DIR=/tmp git status',
    'git status *',
    'git status <<EOF\nid\nEOF',
  ];

  it('a prefix grant for `git status` (with `--short` listed) runs `git status` and `git status --short`; every bypass and unlisted option waits for a person', async () => {
    const grant = await grantFor(stack.client, stack.root, {
      name: 'git status',
      covers: { ...shell('git status', 'prefix'), options: ['--short'] },
    });
    const steps = [
      auto('plain', 'git status'),
      auto('short', 'git status --short'),
      auto('option', 'git status --porcelain --untracked-files=all'),
      ...bypasses.map((run, i) => auto(`bypass-${i}`, run)),
    ];
    const { planId } = await submitSigned(stack.client, stack.root, {
      name: 'bypass attempts',
      steps: [{ parallel: steps, failFast: false }],
    });
    for (const path of ['plain', 'short']) {
      const step = await settledGate(planId, path);
      expect(step.status, path).not.toBe('awaiting_approval');
      expect(step.approvals.map((a) => a.grant?.grantId)).toEqual([grant.grantId]);
    }
    for (let i = 0; i < bypasses.length; i++) {
      const step = await settledGate(planId, `bypass-${i}`);
      expect(step.status, bypasses[i]).toBe('awaiting_approval');
      expect(step.approvals, bypasses[i]).toEqual([]);
      expect(step.grantNote, bypasses[i]).toMatch(/does not cover it: the command is not plain words/);
    }
    const option = await settledGate(planId, 'option');
    expect(option.status).toBe('awaiting_approval');
    expect(option.grantNote).toMatch(/it adds the option `--porcelain`, which the grant does not list/);
    await cancelPlan(stack.client, planId);
  });

  it('an exact grant covers only the exact command: `git status --short` waits', async () => {
    const scoped = { ...generateKeyPair(), name: 'exact cli' };
    await introduceDevice(stack.client, stack.root, scoped);
    await grantFor(stack.client, stack.root, {
      scope: { device: scoped.keyId },
      covers: shell('git status'),
    });
    const { planId } = await submitSigned(stack.client, scoped, {
      name: 'exact',
      steps: [
        { parallel: [auto('plain', 'git status'), auto('short', 'git status --short')], failFast: false },
      ],
    });
    expect((await settledGate(planId, 'plain')).status).not.toBe('awaiting_approval');
    const short = await settledGate(planId, 'short');
    expect(short.status).toBe('awaiting_approval');
    expect(short.grantNote).toContain('the command is not exactly `git status`');
    await cancelPlan(stack.client, planId);
  });

  it('a grant for plans of one device does not cover a plan without a signed proposal, or proposed by another device', async () => {
    await grantFor(stack.client, stack.root, { covers: shell('echo mine') });
    const unsigned = await submitPlan(
      stack.client,
      { name: 'unsigned', steps: [auto('s', 'echo mine')] },
      { proposer: 'test phone (claimed)' },
    );
    expect((await settledGate(unsigned.planId, 's')).grantNote).toMatch(/no standing approval/);
    const other = { ...generateKeyPair(), name: 'other cli' };
    await introduceDevice(stack.client, stack.root, other);
    const theirs = await submitSigned(stack.client, other, {
      name: 'theirs',
      steps: [auto('s', 'echo mine')],
    });
    expect((await settledGate(theirs.planId, 's')).grantNote).toMatch(/the grant is for plans of device/);
    await Promise.all([cancelPlan(stack.client, unsigned.planId), cancelPlan(stack.client, theirs.planId)]);
  });
});

describe('grants that must not work', () => {
  it('refuses at the registry a grant that is unsigned, signed by the policy key, by an unknown key, or replayed under another id', async () => {
    const record = grantRecordOf(
      { name: 'bad', scope: { device: stack.root.keyId }, covers: shell('echo x') },
      Date.now(),
    );
    const signed = signDeviceRecord(record, stack.root);
    const unsigned: Envelope = {
      ...signed,
      signatures: [{ keyid: stack.root.keyId, sig: toBase64(new Uint8Array(64)) }],
    };
    const replayed: Envelope = {
      ...signed,
      payload: toBase64(
        utf8ToBytes(utf8Decode(fromBase64(signed.payload)).replace(record.grantId, 'ab'.repeat(8))),
      ),
    };
    const cases: [string, Envelope, RegExp][] = [
      ['unsigned', unsigned, /signature by .* does not verify/],
      [
        'policy key',
        signDeviceRecord(record, policy),
        /the policy key cannot introduce or revoke devices, agents or grants/,
      ],
      ['unknown key', signDeviceRecord(record, generateKeyPair()), /signed by unknown device/],
      ['replayed under another id', replayed, /signature by .* does not verify/],
    ];
    for (const [what, envelope, reason] of cases)
      await expect(addDeviceRecord(stack.client, envelope, 'issue standing approval'), what).rejects.toThrow(
        reason,
      );
    await addDeviceRecord(stack.client, signed, 'issue standing approval');
    await expect(addDeviceRecord(stack.client, signed, 'issue standing approval')).rejects.toThrow(
      /already issued/,
    );
  });

  it('approves nothing when signed by a device revoked since, or when expired', async () => {
    const laptop = { ...generateKeyPair(), name: 'laptop' };
    await introduceDevice(stack.client, stack.root, laptop);
    await grantFor(stack.client, laptop, {
      scope: { device: stack.root.keyId },
      covers: shell('echo from laptop'),
    });
    await revokeDevice(stack.client, stack.root, laptop.keyId, 'stolen');
    await grantFor(stack.client, stack.root, {
      covers: shell('echo expiring'),
      expiresAt: new Date(Date.now() + 1500).toISOString(),
    });
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const { planId } = await submitSigned(stack.client, stack.root, {
      name: 'void grants',
      steps: [
        {
          parallel: [auto('revoked', 'echo from laptop'), auto('expired', 'echo expiring')],
          failFast: false,
        },
      ],
    });
    for (const path of ['revoked', 'expired']) {
      const step = await settledGate(planId, path);
      expect(step.status, path).toBe('awaiting_approval');
      expect(step.approvals, path).toEqual([]);
    }
    await cancelPlan(stack.client, planId);
  });

  it('approves a limited grant only as often as it allows', async () => {
    const grant = await grantFor(stack.client, stack.root, { covers: shell('echo once'), maxUses: 1 });
    const first = await submitSigned(stack.client, stack.root, {
      name: 'once',
      steps: [auto('s', 'echo once')],
    });
    await waitForStep(stack.client, first.planId, 's', 'succeeded');
    const second = await submitSigned(stack.client, stack.root, {
      name: 'twice',
      steps: [auto('s', 'echo once')],
    });
    const step = await settledGate(second.planId, 's');
    expect(step.status).toBe('awaiting_approval');
    expect(step.grantNote).toMatch(/is used up \(1 of 1\)/);
    const view = await registryView(stack.client);
    expect(view.grants?.find((g) => g.grantId === grant.grantId)?.uses).toBe(1);
    await cancelPlan(stack.client, second.planId);
  });

  it('a grant revoked before the step is reached no longer applies: the step waits for a person', async () => {
    const grant = await grantFor(stack.client, stack.root, { covers: shell('echo later') });
    const { planId } = await submitSigned(stack.client, stack.root, {
      name: 'revoked while waiting',
      steps: [{ id: 'first', gate: 'go on?' }, auto('later', 'echo later')],
    });
    await waitForStep(stack.client, planId, 'first', 'awaiting_approval');
    await revokeGrant(stack.client, stack.root, grant.grantId, 'changed my mind');
    await decide(stack.client, stack.root, planId, 'first', { decision: 'approve' });
    const step = await settledGate(planId, 'later');
    expect(step.status).toBe('awaiting_approval');
    expect(step.approvals).toEqual([]);
    await cancelPlan(stack.client, planId);
  });

  it('a grant revoked while its approved step waits for an executor is withdrawn: the step goes back to a person and does not run', async () => {
    await stack.stopWorkers();
    await stack.startWorkers({ control: true });
    try {
      const grant = await grantFor(stack.client, stack.root, { covers: shell('echo queued') });
      const { planId } = await submitSigned(stack.client, stack.root, {
        name: 'queued',
        steps: [auto('s', 'echo queued')],
      });
      const running = await waitForStep(stack.client, planId, 's', 'running');
      expect(stepOf(running, 's').approvals.map((a) => a.grant?.grantId)).toEqual([grant.grantId]);
      await revokeGrant(stack.client, stack.root, grant.grantId, 'not without me');
      const back = await waitForView(
        stack.client,
        planId,
        (v) => stepOf(v, 's').status === 'awaiting_approval' && stepOf(v, 's').grantNote !== undefined,
      );
      expect(stepOf(back, 's').grantNote).toMatch(/withdrawn before it ran .*revoked/);
      await stack.startWorkers({ executor: true });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(stepOf(await planView(stack.client, planId), 's').status).toBe('awaiting_approval');
      await decide(stack.client, stack.root, planId, 's', { decision: 'approve' });
      const done = await waitForStep(stack.client, planId, 's', 'succeeded');
      expect(stepOf(done, 's').result?.outputTail).toContain('queued');
    } finally {
      await stack.stopWorkers();
      await stack.startWorkers();
    }
  });

  it('a grant issued while an auto step waits approves it', async () => {
    const { planId } = await submitSigned(stack.client, stack.root, {
      name: 'late grant',
      steps: [auto('s', 'echo late')],
    });
    expect((await settledGate(planId, 's')).status).toBe('awaiting_approval');
    const grant = await grantFor(stack.client, stack.root, { covers: shell('echo late') });
    const done = await waitForStep(stack.client, planId, 's', 'succeeded');
    expect(stepOf(done, 's').approvals.map((a) => a.grant?.grantId)).toEqual([grant.grantId]);
  });
});

describe('the policy key alone', () => {
  it("is refused by the workflow validator: no grant, a grant that does not cover the step, a grant id with another grant's signature", async () => {
    const covering = await grantFor(stack.client, stack.root, { covers: shell('echo other') });
    const other = await grantFor(stack.client, stack.root, { covers: shell('echo third') });
    const { planId, workflowId } = await submitSigned(stack.client, stack.root, {
      name: 'policy alone',
      steps: [auto('s', 'echo policy')],
    });
    const view = await waitForStep(stack.client, planId, 's', 'awaiting_approval');
    const step = stepOf(view, 's');
    const { records } = await registryView(stack.client);
    const registry = DeviceRegistry.fromRecords(records);
    const sig = (id: string) => registry.grant(id)!.sig;
    const envelope = (grant?: { id: string; sig: string }) =>
      signApproval(
        {
          workflowId,
          runId: view.runId,
          stepPath: 's',
          stepDigest: step.digest,
          decision: 'approve',
          nowMs: Date.now(),
          nonce: nonce(),
          grant,
        },
        policy,
      );
    const cases: [string, Envelope][] = [
      ['grant_required', envelope()],
      ['grant_does_not_cover', envelope({ id: covering.grantId, sig: sig(covering.grantId) })],
      ['unknown_grant', envelope({ id: covering.grantId, sig: sig(other.grantId) })],
      ['unknown_grant', envelope({ id: 'ab'.repeat(8), sig: sig(covering.grantId) })],
    ];
    for (const [code, env] of cases) {
      const refused = await stack.client.workflow
        .getHandle(workflowId)
        .executeUpdate(approveUpdate, { args: [{ envelope: env, deviceRecords: records }] })
        .then(
          () => undefined,
          (e: unknown) => refusalOf(e)?.code,
        );
      expect(refused).toBe(code);
    }
    expect(stepOf(await planView(stack.client, planId), 's').approvals).toEqual([]);
    await cancelPlan(stack.client, planId);
  });
});

describe('the executor, when the workflow is bypassed', () => {
  let rogue: Worker;
  let connection: NativeConnection;
  let running: Promise<void>;
  beforeAll(async () => {
    // Whoever holds the control plane's certificate: the rogue is inside the stack here.
    connection = await connectTemporalWorker(stack.config, 'control');
    rogue = await Worker.create({
      connection,
      namespace: stack.config.namespace,
      taskQueue: 'rogue',
      workflowsPath: fileURLToPath(new URL('./support/rogue-workflows.ts', import.meta.url)),
    });
    running = rogue.run();
  });
  afterAll(async () => {
    rogue?.shutdown();
    await running;
    await connection?.close();
  });

  /** Schedules runShellStep on the sandbox queue from the attacker's workflow; resolves to the outcome. */
  /**
   * `proposal`: none; the root's proposal of exactly this plan; one it signed for another plan
   * (replayed here); or one for this plan's workflow whose sub-plan the rogue claims to be.
   */
  async function runRogue(
    command: string,
    approvals: (ids: { workflowId: string; runId: string; digest: string }) => Envelope[],
    proposal: 'none' | 'this plan' | 'another plan' | 'a sub-plan it never signed' = 'this plan',
  ): Promise<string> {
    const top = planWorkflowId(`rogue${randomBytes(4).toString('hex')}`);
    const workflowId = proposal === 'a sub-plan it never signed' ? `${top}.evil` : top;
    const runId = 'a'.repeat(36);
    const workspaceId = workflowId.slice(5);
    const raw = { name: 'rogue', steps: [auto('s', command)] };
    const step = planSteps(validatePlan(raw))[0] as ShellStep;
    const digest = stepDigest(step, workspaceId);
    const { records } = await registryView(stack.client);
    const signedRaw =
      proposal === 'another plan' ? { name: 'rogue', steps: [auto('s', 'echo something else')] } : raw;
    const input: ShellStepInput = {
      workflowId,
      runId,
      workspaceId,
      step,
      digest,
      approvals: approvals({ workflowId, runId, digest }),
      trustRecords: records,
      ...(proposal === 'none'
        ? {}
        : {
            plan: raw,
            proposal: signProposal(
              {
                workflowId: top,
                planName: 'rogue',
                planSha256: planSha256(signedRaw),
                subPlans: {},
                proposer: { device: stack.root.keyId },
                at: new Date().toISOString(),
              },
              stack.root,
            ),
          }),
    };
    return stack.client.workflow
      .execute('rogueRunWorkflow', { workflowId: `rogue-${workflowId}`, taskQueue: 'rogue', args: [input] })
      .then(
        (result: StepResult) => `ran: exit ${result.exitCode}`,
        // WorkflowFailedError → ActivityFailure → the executor's ApplicationFailure.
        (e: unknown) => String((e as WorkflowFailedError).cause?.cause ?? e),
      );
  }

  const policyApproval = (
    ids: { workflowId: string; runId: string; digest: string },
    grant?: { id: string; sig: string },
    nowMs = Date.now(),
  ) =>
    signApproval(
      {
        workflowId: ids.workflowId,
        runId: ids.runId,
        stepPath: 's',
        stepDigest: ids.digest,
        decision: 'approve',
        nowMs,
        nonce: nonce(),
        grant,
      },
      policy,
    );

  it('refuses the policy key alone, and a grant that does not cover the step; runs the step a grant covers', async () => {
    const grant = await grantFor(stack.client, stack.root, { covers: shell('echo granted') });
    const registry = DeviceRegistry.fromRecords((await registryView(stack.client)).records);
    const named = { id: grant.grantId, sig: registry.grant(grant.grantId)!.sig };
    expect(await runRogue('id', (ids) => [policyApproval(ids)])).toMatch(
      /executor refused step "s": 0 of 1 approval; not counted: \[grant_required\]/,
    );
    expect(await runRogue('id', (ids) => [policyApproval(ids, named)])).toMatch(
      /\[grant_does_not_cover\] standing approval "test grant" .* does not cover "s": the command is not exactly `echo granted`/,
    );
    // Without a verified proposal, no scoped grant applies, even to the command it names.
    for (const replay of ['none', 'another plan', 'a sub-plan it never signed'] as const)
      expect(await runRogue('echo granted', (ids) => [policyApproval(ids, named)], replay), replay).toMatch(
        /the plan carries no verified proposal/,
      );
    // The control: what the person allowed runs, and only that.
    expect(await runRogue('echo granted', (ids) => [policyApproval(ids, named)])).toBe('ran: exit 0');
  });

  it('refuses an expired grant even when the policy key backdates its approval', async () => {
    const grant = await grantFor(stack.client, stack.root, {
      covers: shell('echo short-lived'),
      expiresAt: new Date(Date.now() + 1500).toISOString(),
    });
    const registry = DeviceRegistry.fromRecords((await registryView(stack.client)).records);
    const named = { id: grant.grantId, sig: registry.grant(grant.grantId)!.sig };
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const backdated = Date.parse(grant.at) + 100;
    expect(await runRogue('echo short-lived', (ids) => [policyApproval(ids, named, backdated)])).toMatch(
      /\[grant_expired\] standing approval "test grant" \([0-9a-f]{16}\) expired at/,
    );
  });
});

describe('history and audit', () => {
  it('name the grant that approved a step; audit verify fails the step if the grant was revoked before it ran', async () => {
    const grant = await grantFor(stack.client, stack.root, {
      name: 'audited echo',
      covers: shell('echo audited'),
    });
    const { planId, workflowId } = await submitSigned(stack.client, stack.root, {
      name: 'audited',
      steps: [auto('s', 'echo audited')],
    });
    await stack.client.workflow.getHandle(workflowId).result();
    const timeline = await planTimeline(stack.client, planId, { pinnedRootKeyId: stack.root.keyId });
    const approval = timeline.entries.find((e) => e.kind === 'approval' && e.step === 's')!;
    expect(approval.text).toMatch(
      new RegExp(
        `^approved by standing approval "audited echo" \\(${grant.grantId}: \`echo audited\` exactly, for plans "test phone" proposes, until ${grant.expiresAt}; signed by "test phone" on ${grant.at}\\), applied by the policy key`,
      ),
    );
    expect(timeline.steps.find((s) => s.path === 's')?.verified).toBe(true);

    const bundle = await exportBundle(stack.client, planId, { pinnedRootKeyId: stack.root.keyId });
    const verdict = verifyBundle(bundle, { rootKeyId: stack.root.keyId });
    expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
    expect(verdict.steps[0]!.text).toContain('ran as approved: standing approval "audited echo"');

    // The registry's own revocation, dated before the step ran, that the plan never heard of.
    const ranAt = timeline.entries.find((e) => e.kind === 'step_started' && e.step === 's')!.at;
    const revokedAt = (offsetMs: number) =>
      signDeviceRecord(
        {
          type: 'revoke-grant',
          grantId: grant.grantId,
          reason: 'lost trust',
          at: new Date(Date.parse(ranAt) + offsetMs).toISOString(),
        },
        stack.root,
      );
    const before = verifyBundle(
      { ...bundle, deviceRecords: [...bundle.deviceRecords, revokedAt(-1000)] },
      { rootKeyId: stack.root.keyId },
    );
    expect(before.ok).toBe(false);
    expect(before.steps[0]).toMatchObject({ path: 's', verdict: 'failed' });
    expect(before.steps[0]!.text).toMatch(
      /standing approval "audited echo" \([0-9a-f]{16}\) was revoked at .*, before the step ran at/,
    );
    const after = verifyBundle(
      { ...bundle, deviceRecords: [...bundle.deviceRecords, revokedAt(60_000)] },
      { rootKeyId: stack.root.keyId },
    );
    expect(after.ok).toBe(true);
  });

  it('audit verify fails a step approved by a device the registry revoked before the step ran', async () => {
    const laptop = { ...generateKeyPair(), name: 'audited laptop' };
    await introduceDevice(stack.client, stack.root, laptop);
    const { planId, workflowId } = await submitSigned(stack.client, stack.root, {
      name: 'person approved',
      steps: [{ id: 'p', run: 'echo by a person' }],
    });
    await waitForStep(stack.client, planId, 'p', 'awaiting_approval');
    await decide(stack.client, laptop, planId, 'p', { decision: 'approve' });
    await stack.client.workflow.getHandle(workflowId).result();
    const bundle = await exportBundle(stack.client, planId, { pinnedRootKeyId: stack.root.keyId });
    expect(verifyBundle(bundle, { rootKeyId: stack.root.keyId }).ok).toBe(true);
    const timeline = await planTimeline(stack.client, planId, { pinnedRootKeyId: stack.root.keyId });
    const ranAt = timeline.entries.find((e) => e.kind === 'step_started')!.at;
    const revoked = signDeviceRecord(
      {
        type: 'revoke',
        keyId: laptop.keyId,
        reason: 'stolen',
        at: new Date(Date.parse(ranAt) - 1000).toISOString(),
      },
      stack.root,
    );
    const verdict = verifyBundle(
      { ...bundle, deviceRecords: [...bundle.deviceRecords, revoked] },
      { rootKeyId: stack.root.keyId },
    );
    expect(verdict.ok).toBe(false);
    expect(verdict.steps[0]!.text).toMatch(
      /the approval by "audited laptop" counts for nothing: the device was revoked at .*, before the step ran at/,
    );
  });

  it('the audit does not take a plan-rule approval from an old history as anyone having approved', async () => {
    // The recorded histories from before standing approvals: their auto steps were approved by plan rules.
    const fixture = JSON.parse(
      await readFile(
        fileURLToPath(new URL('./fixtures/histories/parallel-collect-all.json', import.meta.url)),
        'utf8',
      ),
    ) as { workflowId: string; history: { events: unknown[] } };
    const runs = [{ runId: 'recorded', events: historyFromJSON(fixture.history).events ?? [] }];
    const { timeline } = timelineFromRuns(fixture.workflowId, runs);
    const ruled = timeline.entries.filter((e) => e.approval?.role === 'policy');
    expect(ruled.length).toBeGreaterThan(0);
    for (const entry of ruled) expect(entry.approval!.verified).toBe(false);
    const ranOnRule = timeline.steps.filter((s) => ruled.some((e) => e.step === s.path));
    for (const step of ranOnRule) expect(step.verified, step.path).toBe(false);
  });
});

describe('grants for MCP tool calls', () => {
  const call = (id: string, server: string, tool: string, args: Record<string, unknown>) => ({
    id,
    mcp: { server, tool, arguments: args },
    approval: 'auto',
  });

  it('cover a read-only tool with the arguments they allow, and nothing else', async () => {
    await grantFor(stack.client, stack.root, {
      covers: {
        kind: 'mcp',
        server: 'everything',
        tool: 'echo',
        arguments: { message: { oneOf: ['hi', 'hello'] } },
      },
    });
    const { planId } = await submitSigned(stack.client, stack.root, {
      name: 'echo calls',
      steps: [
        {
          parallel: [
            call('allowed', 'everything', 'echo', { message: 'hello' }),
            call('other-value', 'everything', 'echo', { message: 'rm -rf' }),
            call('other-tool', 'everything', 'get-sum', { a: 1, b: 2 }),
          ],
          failFast: false,
        },
      ],
    });
    const allowed = await waitForStep(stack.client, planId, 'allowed', 'succeeded');
    expect(stepOf(allowed, 'allowed').result?.outputTail).toContain('hello');
    expect((await settledGate(planId, 'other-value')).grantNote).toMatch(
      /argument "message": it is none of the values the grant lists/,
    );
    expect((await settledGate(planId, 'other-tool')).grantNote).toMatch(
      /no standing approval (covers this step|applies)/,
    );
    await cancelPlan(stack.client, planId);
  });

  it('need allowWrites for a tool that is not read-only, and a path glob never reaches out of its folder', async () => {
    const write = (id: string, path: string) =>
      call(id, 'filesystem', 'write_file', { path, content: 'note' });
    await grantFor(stack.client, stack.root, {
      name: 'no writes flag',
      covers: {
        kind: 'mcp',
        server: 'filesystem',
        tool: 'write_file',
        arguments: { path: { glob: '/workspace/a/**' }, content: { any: true } },
      },
    });
    const first = await submitSigned(stack.client, stack.root, {
      name: 'write without flag',
      steps: [write('w', '/workspace/a/x.txt')],
    });
    expect((await settledGate(first.planId, 'w')).grantNote).toMatch(
      /write_file is not annotated read-only, and the grant does not allow writes/,
    );
    await cancelPlan(stack.client, first.planId);

    await grantFor(stack.client, stack.root, {
      name: 'notes only',
      covers: {
        kind: 'mcp',
        server: 'filesystem',
        tool: 'write_file',
        arguments: { path: { glob: '/workspace/**' }, content: { any: true } },
        allowWrites: true,
      },
    });
    const second = await submitSigned(stack.client, stack.root, {
      name: 'notes',
      steps: [
        {
          parallel: [write('inside', '/workspace/today.md'), write('escape', '/workspace/../etc/cron.d/x')],
          failFast: false,
        },
      ],
    });
    await waitForStep(stack.client, second.planId, 'inside', 'succeeded');
    expect((await settledGate(second.planId, 'escape')).grantNote).toMatch(
      /argument "path": it does not match \/workspace\/\*\*/,
    );
    await cancelPlan(stack.client, second.planId);
  });
});
