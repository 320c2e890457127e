/**
 * The workspace janitor: every so often, the control side lists the plans that are still open
 * and the executor removes workspace containers that belong to none of them (plans that were
 * terminated, or whose end-of-plan release was lost). The executor never reads other workflows
 * itself: the list reaches it as the input of an activity, like everything else it does.
 */
import { continueAsNew, log, proxyActivities, sleep } from '@temporalio/workflow';
import type { createControlActivities } from '../activities/control.js';
import type { createExecutorActivities } from '../activities/executor.js';
import { TASK_QUEUES } from '../core/names.js';

export interface JanitorInput {
  intervalMs: number;
  /** Rounds before continue-as-new keeps the history short. */
  roundsPerRun?: number;
}

const control = proxyActivities<ReturnType<typeof createControlActivities>>({
  taskQueue: TASK_QUEUES.control,
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 3 },
});
const sandbox = proxyActivities<ReturnType<typeof createExecutorActivities>>({
  taskQueue: TASK_QUEUES.sandbox,
  startToCloseTimeout: '2m',
  retry: { maximumAttempts: 3 },
});

export async function workspaceJanitorWorkflow(input: JanitorInput): Promise<void> {
  const rounds = input.roundsPerRun ?? 100;
  for (let round = 0; round < rounds; round++) {
    try {
      const open = await control.listOpenWorkspaces();
      await sandbox.reapWorkspaces(open);
    } catch (error) {
      // A round that failed (no executor, Docker down) is tried again next time.
      log.warn('workspace janitor round failed', { error: (error as Error).message });
    }
    await sleep(input.intervalMs);
  }
  await continueAsNew<typeof workspaceJanitorWorkflow>(input);
}
