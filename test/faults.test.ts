/**
 * Crash tests with real processes: the executor, the control worker and the Temporal dev
 * server (SQLite file) are SIGKILLed mid-plan and restarted. Every plan completes, no approved
 * step starts twice (each step appends to a counter file in the workspace), no approval is lost.
 * The executor uses the jail here; test/docker-faults.test.ts does the same on Docker.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planView, submitPlan } from '../services/plans.js';
import { statePaths } from '../workers/config.js';
import { ProcessStack, waitUntil } from './support/process-stack.js';

let stack: ProcessStack;
beforeAll(async () => {
  stack = await ProcessStack.start('faults', 'jail');
});
afterAll(async () => stack?.close());

const counterOf = async (planId: string) =>
  (await readFile(join(statePaths(stack.config.home).workspaces, planId, 'counter'), 'utf8'))
    .trim()
    .split('\n');

describe('crashes', () => {
  it('SIGKILL of the executor mid-step: the restarted executor re-attaches and the step runs once', async () => {
    const plan = {
      name: 'executor-crash',
      steps: [{ id: 'work', run: 'echo work >> counter; sleep 4; echo finished' }],
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    await stack.crashExecutorMidStep(
      planId,
      workflowId,
      'work',
      async () => (await counterOf(planId)).length > 0,
    );
    const view = await planView(stack.client, planId);
    const step = view.steps[0]!;
    expect(step.status).toBe('succeeded');
    expect(step.result?.outputTail).toContain('finished');
    expect(step.result?.attachCount).toBeGreaterThanOrEqual(2);
    expect(await counterOf(planId)).toEqual(['work']);
  });

  it('SIGKILL of the control worker while a step runs and while a gate waits: nothing is lost', async () => {
    const plan = {
      name: 'control-crash',
      steps: [
        { id: 'first', run: 'echo first >> counter; sleep 3' },
        { id: 'second', run: 'echo second >> counter' },
      ],
    };
    const { planId, workflowId } = await submitPlan(stack.client, plan, { proposer: 'test' });
    await stack.waitForStatus(planId, 'first', 'awaiting_approval');
    await stack.approve(planId, 'first');
    await waitUntil(async () => (await counterOf(planId)).length > 0 || undefined, 'the first step to start');
    await stack.control.kill();
    await sleep(4_000); // the step finishes while no control worker is alive
    await stack.control.start();
    await stack.waitForStatus(planId, 'second', 'awaiting_approval');
    await stack.approve(planId, 'second');
    await stack.control.kill(); // the approval was accepted: a crash right after must not lose it
    await stack.control.start();
    await stack.closed(workflowId);
    const view = await planView(stack.client, planId);
    expect(view.steps.map((s) => s.approvals.length)).toEqual([1, 1]);
    expect(await counterOf(planId)).toEqual(['first', 'second']);
  });

  it('SIGKILL of the Temporal dev server at random points: plans resume from the SQLite file', async () => {
    let seed = 20261125;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const steps = ['a', 'b', 'c', 'd'].map((id) => ({ id, run: `echo ${id} >> counter; sleep 1` }));
    const plans = await Promise.all(
      [0, 1].map(() => submitPlan(stack.client, { name: 'server-crash', steps }, { proposer: 'test' })),
    );
    for (const id of ['a', 'b', 'c', 'd']) {
      for (const plan of plans) {
        await stack.waitForStatus(plan.planId, id, 'awaiting_approval');
        await stack.approve(plan.planId, id);
      }
      await sleep(random() * 1_500);
      await stack.server.stop('SIGKILL');
      await sleep(500);
      await stack.startServer();
    }
    for (const plan of plans) {
      await stack.closed(plan.workflowId);
      expect(await counterOf(plan.planId)).toEqual(['a', 'b', 'c', 'd']);
      const view = await planView(stack.client, plan.planId);
      expect(view.steps.every((s) => s.approvals.length === 1 && s.status === 'succeeded')).toBe(true);
    }
  });
});
