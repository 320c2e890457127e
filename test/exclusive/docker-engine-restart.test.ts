/**
 * The Docker engine restarts mid-plan (dockerd SIGKILLed and started again by the set-up script).
 * Between steps: the next step gets a fresh container on the same volume, the plan's files
 * intact. During a step: the step fails with a message that says what happened and is not run
 * again; the plan's files stay. Nothing leaks either way.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planView } from '../../services/plans.js';
import { PROJECT_ROOT } from '../../workers/config.js';
import { submitGranted } from '../support/grants.js';
import { containersOf, readWorkspaceFile, removeDockerLeftovers } from '../support/docker.js';
import { ProcessStack, waitUntil } from '../support/process-stack.js';

const run = promisify(execFile);
let stack: ProcessStack;
const plans: string[] = [];
beforeAll(async () => {
  stack = await ProcessStack.start('engine-restart', 'docker');
});
afterAll(async () => {
  await run(`${PROJECT_ROOT}/scripts/docker-engine`); // whatever happened, leave an engine running
  await stack?.close();
  await removeDockerLeftovers(plans);
});

async function restartDockerEngine(): Promise<void> {
  const { stdout } = await run('pgrep', ['-x', 'dockerd']);
  const pid = Number(stdout.trim().split('\n')[0]);
  process.kill(pid, 'SIGKILL');
  await waitUntil(
    async () =>
      await run('pgrep', ['-x', 'dockerd']).then(
        () => undefined,
        () => true,
      ),
    'dockerd to die',
  );
  await run(`${PROJECT_ROOT}/scripts/docker-engine`);
}

/** Submits `plan` signed by the root device, whose exact grants let its `approval: auto` steps run without a person. */
async function submitAuto(plan: Record<string, unknown>) {
  const submitted = await submitGranted(stack.client, stack.root, plan);
  plans.push(submitted.planId);
  return submitted;
}

describe('a Docker engine restart', () => {
  it('between steps: the next step runs in a fresh container on the same volume', async () => {
    const { planId, workflowId } = await submitAuto({
      name: 'engine-restart-between',
      steps: [
        { id: 'write', run: 'echo kept > note', approval: 'auto' },
        { id: 'pause', gate: 'restart the engine now' },
        { id: 'read', run: 'cat note', approval: 'auto' },
      ],
    });
    await stack.waitForStatus(planId, 'pause', 'awaiting_approval');
    await restartDockerEngine();
    await stack.approve(planId, 'pause');
    expect(await stack.closed(workflowId)).toBe('COMPLETED');
    const read = (await planView(stack.client, planId)).steps[2]!;
    expect(read.result?.outputTail).toContain('kept');
    expect(read.result?.attempt).toBe(1);
    expect(await containersOf([planId])).toEqual([]);
  });

  it('during a step: the step fails saying the container stopped, runs once, and the files stay', async () => {
    const { planId, workflowId } = await submitAuto({
      name: 'engine-restart-during',
      steps: [{ id: 'long', run: 'echo started >> counter; sleep 20; echo finished', approval: 'auto' }],
    });
    await waitUntil(
      async () =>
        (await readWorkspaceFile(planId, 'counter').catch(() => '')).includes('started') ? true : undefined,
      'the step to start',
    );
    await restartDockerEngine();
    expect(await stack.closed(workflowId)).toBe('FAILED');
    const step = (await planView(stack.client, planId)).steps[0]!;
    expect(step.status).toBe('failed');
    expect(step.error).toMatch(
      /workspace container stopped while the step ran \(was the Docker engine restarted\?\)|Docker engine did not answer/,
    );
    expect(step.result?.outputTail).not.toContain('finished');
    await sleep(500);
    expect((await readWorkspaceFile(planId, 'counter')).trim()).toBe('started');
    expect(await containersOf([planId])).toEqual([]);
  });
});
