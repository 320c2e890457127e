/**
 * Faults on the Docker backend, with real worker processes: the executor SIGKILLed mid-step, an
 * executor frozen while its step hangs, a step that runs out of memory, and a flood of output.
 * Each plan ends with its step containers gone, and no approved step ever starts twice.
 * (Restarting dockerd itself is in docker-engine.exclusive.test.ts: it runs alone.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planView, submitPlan } from '../services/plans.js';
import { submitGranted } from './support/grants.js';
import { containersOf, readWorkspaceFile, removeDockerLeftovers } from './support/docker.js';
import { ProcessStack, waitUntil } from './support/process-stack.js';
import { WorkerProcess } from './support/processes.js';

let stack: ProcessStack;
const plans: string[] = [];
beforeAll(async () => {
  stack = await ProcessStack.start('docker-faults', 'docker');
});
afterAll(async () => {
  await stack?.close();
  await removeDockerLeftovers(plans);
});

async function submit(plan: Record<string, unknown>) {
  const submitted = await submitPlan(stack.client, plan, { proposer: 'test' });
  plans.push(submitted.planId);
  return submitted;
}

/** A plan whose `approval: auto` steps run on exact grants the root device signed, without a person. */
async function submitAuto(plan: Record<string, unknown>) {
  const submitted = await submitGranted(stack.client, stack.root, plan);
  plans.push(submitted.planId);
  return submitted;
}

const counterOf = async (planId: string) =>
  (await readWorkspaceFile(planId, 'counter').catch(() => '')).trim().split('\n').filter(Boolean);

describe('faults on the Docker backend', () => {
  it('SIGKILL of the executor mid-step: the restarted executor re-attaches in the container, the step runs once, nothing leaks', async () => {
    const { planId, workflowId } = await submit({
      name: 'docker-executor-crash',
      steps: [{ id: 'work', run: 'echo work >> counter; sleep 4; echo finished' }],
    });
    await stack.crashExecutorMidStep(
      planId,
      workflowId,
      'work',
      async () => (await counterOf(planId)).length > 0,
    );
    const step = (await planView(stack.client, planId)).steps[0]!;
    expect(step.status).toBe('succeeded');
    expect(step.result?.backend).toBe('docker');
    expect(step.result?.outputTail).toContain('finished');
    expect(step.result?.attachCount).toBeGreaterThanOrEqual(2);
    expect(await counterOf(planId)).toEqual(['work']);
    expect(await containersOf([planId])).toEqual([]);
  });

  it('a hung step under a frozen executor: the heartbeat times out, another executor takes over, the time limit stops it, the container goes', async () => {
    const { planId, workflowId } = await submitAuto({
      name: 'docker-hung-step',
      steps: [{ id: 'hang', run: 'echo hanging > started; sleep 600', timeout: '12s', approval: 'auto' }],
    });
    await waitUntil(
      async () =>
        (await readWorkspaceFile(planId, 'started').catch(() => '')).includes('hanging') || undefined,
      'the step to start',
    );
    const frozen = stack.executor;
    const rescuer = new WorkerProcess('executor', stack.config, stack.dir);
    await rescuer.start();
    frozen.child!.kill('SIGSTOP');
    try {
      expect(await stack.closed(workflowId)).toBe('FAILED');
    } finally {
      frozen.child!.kill('SIGCONT');
    }
    const step = (await planView(stack.client, planId)).steps[0]!;
    expect(step.status).toBe('failed');
    expect(step.error).toBe('stopped at its time limit of 12s');
    expect(step.result?.attachCount).toBeGreaterThanOrEqual(2); // the rescuer attached to the same run
    expect(await containersOf([planId])).toEqual([]);
    await rescuer.kill('SIGTERM');
  });

  it('a step that exceeds the memory limit fails with a clear out-of-memory message', async () => {
    const { planId, workflowId } = await submitAuto({
      name: 'docker-oom',
      steps: [{ id: 'hog', run: 'head -c 900m /dev/zero | tail > /dev/null', approval: 'auto' }],
    });
    expect(await stack.closed(workflowId)).toBe('FAILED');
    const step = (await planView(stack.client, planId)).steps[0]!;
    expect(step.status).toBe('failed');
    expect(step.result?.exitCode).toBe(137);
    expect(step.error).toMatch(
      /^killed by the out-of-memory killer: the step's container reached its memory limit of 512 MiB/,
    );
    expect(await containersOf([planId])).toEqual([]);
  });

  it('a flood of output is bounded and the step still succeeds with the end of its output', async () => {
    const { planId, workflowId } = await submitAuto({
      name: 'docker-flood',
      steps: [
        { id: 'flood', run: 'yes countersign | head -c 6000000; echo; echo tail-marker', approval: 'auto' },
      ],
    });
    await stack.closed(workflowId);
    const step = (await planView(stack.client, planId)).steps[0]!;
    expect(step.status).toBe('succeeded');
    expect(step.result?.truncated).toBe(true);
    expect(step.result?.outputBytes).toBeGreaterThan(6_000_000);
    expect(step.result?.outputTail).toContain('tail-marker');
  });
});
