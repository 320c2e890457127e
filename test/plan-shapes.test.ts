/** Every plan shape on a real Temporal server with the real workers: order, parallelism, sub-plans. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { decide, planView, submitPlan } from '../services/plans.js';
import { submitGranted } from './support/grants.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { stepStatus, waitForStep, waitForView } from './support/plans.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('shapes');
});
afterAll(async () => stack?.close());

const approve = (planRef: string, step: string) =>
  decide(stack.client, stack.root, planRef, step, { decision: 'approve' });

async function failureOf(workflowId: string): Promise<string> {
  const error = await stack.client.workflow
    .getHandle(workflowId)
    .result()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  return String((error as WorkflowFailedError).cause?.message);
}

describe('sequence', () => {
  it('runs steps in order, each after its own approval, in one shared workspace', async () => {
    const plan = {
      name: 'ordered',
      steps: [
        { id: 'one', run: 'echo one >> log' },
        { id: 'two', run: 'echo two >> log' },
        { id: 'three', run: 'cat log' },
      ],
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    for (const step of ['one', 'two', 'three']) {
      const view = await waitForStep(stack.client, planId, step, 'awaiting_approval');
      // Later steps are not offered before earlier ones finish.
      const later = view.steps.slice(view.steps.findIndex((s) => s.path === step) + 1);
      expect(later.every((s) => s.status === 'pending')).toBe(true);
      await approve(planId, step);
    }
    await stack.client.workflow.getHandle(workflowId).result();
    const view = await planView(stack.client, planId);
    expect(view.steps.find((s) => s.path === 'three')?.result?.outputTail.replace(/\r/g, '')).toContain(
      'one\ntwo\n',
    );
  });

  it('skips the rest of a sequence after a failing step', async () => {
    const plan = {
      name: 'fails',
      steps: [
        { id: 'bad', run: 'exit 3', approval: 'auto' },
        { id: 'never', run: 'true' },
      ],
    };
    const { planId, workflowId } = await submitGranted(stack.client, stack.root, plan);
    expect(await failureOf(workflowId)).toContain('bad failed (exit code 3)');
    const view = await planView(stack.client, planId);
    expect(stepStatus(view, 'bad')).toBe('failed');
    expect(stepStatus(view, 'never')).toBe('skipped');
  });
});

describe('parallel', () => {
  it('fail-fast cancels the siblings still running or waiting', async () => {
    const plan = {
      name: 'fail-fast',
      steps: [
        {
          parallel: [
            { id: 'slow', run: 'sleep 30; touch finished', approval: 'auto' },
            { id: 'waiting', run: 'true' },
            { id: 'boom', run: 'sleep 1; exit 1', approval: 'auto' },
          ],
        },
      ],
    };
    const { planId, workflowId } = await submitGranted(stack.client, stack.root, plan);
    expect(await failureOf(workflowId)).toContain('boom failed');
    const view = await planView(stack.client, planId);
    expect(stepStatus(view, 'slow')).toBe('cancelled');
    expect(stepStatus(view, 'waiting')).toBe('cancelled');
    // The cancelled step's process was killed, not left to finish.
    await expect(readFile(join(stack.paths.workspaces, planId, 'finished'))).rejects.toThrow();
  });

  it('collect-all lets every branch finish and then reports the failures', async () => {
    const plan = {
      name: 'collect-all',
      steps: [
        {
          parallel: [
            { id: 'a', run: 'exit 1', approval: 'auto' },
            { id: 'b', run: 'sleep 1; echo b-done', approval: 'auto' },
          ],
          failFast: false,
        },
      ],
    };
    const { planId, workflowId } = await submitGranted(stack.client, stack.root, plan);
    expect(await failureOf(workflowId)).toContain('a failed');
    const view = await planView(stack.client, planId);
    expect(stepStatus(view, 'b')).toBe('succeeded');
  });

  it('honours maxConcurrency', async () => {
    const branches = ['p1', 'p2', 'p3', 'p4'].map((id) => ({
      id,
      run: `n=$(ls running 2>/dev/null | wc -l); echo $n >> peaks; mkdir -p running; touch running/${id}; sleep 1; rm running/${id}`,
      approval: 'auto',
    }));
    const plan = {
      name: 'limited',
      steps: [
        { parallel: branches, maxConcurrency: 2 },
        { id: 'report', run: 'sort -n peaks | tail -1', approval: 'auto' },
      ],
    };
    const { planId, workflowId } = await submitGranted(stack.client, stack.root, plan);
    await stack.client.workflow.getHandle(workflowId).result();
    const view = await planView(stack.client, planId);
    const peak = Number(view.steps.find((s) => s.path === 'report')?.result?.outputTail.trim());
    expect(peak).toBeLessThanOrEqual(1); // at most one other branch was running when each started
  });

  it('holds maxConcurrency when several branches wait for the one slot that frees', async () => {
    const ids = ['g1', 'g2', 'g3', 'g4', 'g5', 'g6'];
    const plan = {
      name: 'gated limit',
      steps: [{ parallel: ids.map((id) => ({ id, gate: `go ahead with ${id}?` })), maxConcurrency: 2 }],
    };
    const { planId } = await submitGranted(stack.client, stack.root, plan);
    await waitForStep(stack.client, planId, 'g2', 'awaiting_approval');
    await decide(stack.client, stack.root, planId, 'g1', { decision: 'approve' });
    await waitForStep(stack.client, planId, 'g3', 'awaiting_approval');
    // Every waiting branch woke when g1 ended; only one may take its slot.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const awaiting = (await planView(stack.client, planId)).steps.filter(
      (s) => s.status === 'awaiting_approval',
    );
    expect(awaiting.map((s) => s.path)).toEqual(['g2', 'g3']);
    await stack.client.workflow.getHandle(`plan-${planId}`).terminate('test over');
  });
});

describe('sub-plans', () => {
  it('runs nested sub-plans as child workflows with their own approvals and workspaces', async () => {
    const plan = {
      name: 'parent',
      steps: [
        { id: 'prepare', run: 'echo parent > who' },
        {
          id: 'docs',
          plan: {
            name: 'docs agent',
            steps: [
              { id: 'write', run: 'echo child > who; cat who' },
              {
                id: 'deeper',
                plan: { name: 'reviewer', steps: [{ id: 'check', gate: 'Is the documentation right?' }] },
              },
            ],
          },
        },
        { id: 'finish', run: 'cat who' },
      ],
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    await waitForStep(stack.client, planId, 'prepare', 'awaiting_approval');
    await approve(planId, 'prepare');
    await waitForView(stack.client, planId, (v) => v.subPlans[0]?.status === 'running');
    const child = `${workflowId}.docs`;
    await waitForStep(stack.client, child, 'write', 'awaiting_approval');
    await approve(planId, 'docs/write');
    await waitForStep(stack.client, `${child}.deeper`, 'check', 'awaiting_approval');
    await approve(planId, 'docs/deeper/check');
    await waitForStep(stack.client, planId, 'finish', 'awaiting_approval');
    await approve(planId, 'finish');
    const result = await stack.client.workflow.getHandle(workflowId).result();
    expect(result.status).toBe('succeeded');
    const view = await planView(stack.client, planId);
    // The sub-plan had its own workspace: the parent's file is untouched.
    expect(view.steps.find((s) => s.path === 'finish')?.result?.outputTail).toContain('parent');
    const childView = await planView(stack.client, child);
    expect(childView.workspaceId).toBe(`${planId}.docs`);
    expect(childView.steps[0]?.approvals[0]?.deviceName).toBe('test phone');
  });

  it('fails the parent when a sub-plan fails', async () => {
    const plan = {
      name: 'parent-fails',
      steps: [
        {
          id: 'sub',
          plan: { name: 'child', steps: [{ id: 'x', run: 'exit 7', approval: 'auto' }] },
        },
      ],
    };
    const { workflowId } = await submitGranted(stack.client, stack.root, plan);
    expect(await failureOf(workflowId)).toContain('sub-plan sub failed');
  });
});
