import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { RunDir } from '../sandbox/runner/run-dir.js';
import { WorkflowFailedError } from '@temporalio/client';
import { decide, submitPlan } from '../services/plans.js';
import { submitGranted } from './support/grants.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { waitForStep } from './support/plans.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('basics');
});
afterAll(async () => stack?.close());

describe('a plan with one shell step', () => {
  it('waits for a signed approval, runs the step in the jail, and records the result', async () => {
    const plan = {
      name: 'hello',
      steps: [{ id: 'greet', run: 'echo hello from $(id -u) > out.txt; cat out.txt' }],
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    await waitForStep(stack.client, planId, 'greet', 'awaiting_approval');
    const applied = await decide(stack.client, stack.root, planId, 'greet', { decision: 'approve' });
    expect(applied.stepStatus).toBe('approved');
    const result = await stack.client.workflow.getHandle(workflowId).result();
    expect(result.status).toBe('succeeded');
    const view = await waitForStep(stack.client, planId, 'greet', 'succeeded');
    const step = view.steps[0]!;
    expect(step.result?.exitCode).toBe(0);
    expect(step.result?.outputTail).toContain('hello from 1000');
    expect(step.result?.backend).toBe('jail');
    expect(step.approvals[0]?.deviceName).toBe('test phone');
  });

  it('fails the plan when a device denies the step, without running it', async () => {
    const plan = { name: 'deny-me', steps: [{ id: 'rm', run: 'touch ran' }] };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    await waitForStep(stack.client, planId, 'rm', 'awaiting_approval');
    await decide(stack.client, stack.root, planId, 'rm', { decision: 'deny', reason: 'not today' });
    const error = await stack.client.workflow
      .getHandle(workflowId)
      .result()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(String((error as WorkflowFailedError).cause?.message)).toContain('rm denied');
    const view = await waitForStep(stack.client, planId, 'rm', 'denied');
    expect(view.steps[0]?.result).toBeUndefined();
  });
});

describe('a bad plan that bypasses the CLI', () => {
  it('fails the workflow with InvalidPlan and the node paths, and schedules nothing', async () => {
    const handle = await stack.client.workflow.start('planWorkflow', {
      workflowId: 'plan-direct-bad',
      taskQueue: 'countersign-control',
      args: [
        {
          planId: 'direct-bad',
          plan: { name: 'x', steps: [{ id: 'a', run: ['rm', '-rf'] }, { weird: true }] },
          workspaceId: 'direct-bad',
          proposer: 'raw client',
          trustRecords: [],
        },
      ],
    });
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause as { type?: string; message: string };
    expect(cause.type).toBe('InvalidPlan');
    expect(cause.message).toContain('steps[0].run: expected string');
    expect(cause.message).toContain('steps[1]: unknown node');
    const history = await handle.fetchHistory();
    expect(
      history.events?.some(
        (e) =>
          e.activityTaskScheduledEventAttributes || e.startChildWorkflowExecutionInitiatedEventAttributes,
      ),
    ).toBe(false);
  });
});

describe('limits a step cannot escape', () => {
  it('stops a step at its own time limit, from the runner (no executor needed)', async () => {
    const plan = {
      name: 'slow',
      steps: [{ id: 'hang', run: 'echo begin; sleep 60; echo never', timeout: '2s', approval: 'auto' }],
    };
    const { planId, workflowId } = await submitGranted(stack.client, stack.root, plan);
    const error = await stack.client.workflow
      .getHandle(workflowId)
      .result()
      .catch((e: unknown) => e);
    expect(String((error as WorkflowFailedError).cause?.message)).toContain(
      'hang failed (stopped at its time limit of 2s)',
    );
    const step = (await waitForStep(stack.client, planId, 'hang', 'failed')).steps[0]!;
    expect(step.result?.timedOut).toBe(true);
    expect(step.result?.durationMs).toBeLessThan(10_000);
    expect(step.result?.outputTail).toContain('reached its 2 s time limit');
    expect(step.result?.outputTail).not.toContain('never');
  });

  it('bounds a flood of output: the transcript is capped with a marker and the step still succeeds', async () => {
    const plan = {
      name: 'flood',
      steps: [
        { id: 'flood', run: 'yes countersign | head -c 8000000; echo; echo tail-marker', approval: 'auto' },
      ],
    };
    const { planId, workflowId } = await submitGranted(stack.client, stack.root, plan);
    await stack.client.workflow.getHandle(workflowId).result();
    const view = await waitForStep(stack.client, planId, 'flood', 'succeeded');
    const step = view.steps[0]!;
    expect(step.result?.truncated).toBe(true);
    expect(step.result?.outputBytes).toBeGreaterThan(8_000_000);
    expect(step.result?.outputTail.length).toBeLessThanOrEqual(4096);
    expect(step.result?.outputTail).toContain('tail-marker'); // the end of the output survives the cap
    const run = new RunDir(stack.paths.runs, {
      workflowId,
      runId: view.runId,
      stepPath: 'flood',
      digest: step.digest,
    });
    const transcript = await readFile(run.path('transcript.log'), 'utf8');
    expect(transcript.length).toBeLessThan(1024 * 1024 + 200);
    expect(transcript).toContain('output truncated after 1048576 bytes');
  });
});
