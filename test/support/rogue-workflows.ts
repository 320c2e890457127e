/**
 * An attacker's workflow: it talks to Temporal like any client can, skips every check the plan
 * workflow makes, and schedules the executor's activity directly with whatever input it likes.
 * What stands between it and the sandbox is the executor's own check.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createExecutorActivities, ShellStepInput } from '../../activities/executor.js';
import { TASK_QUEUES } from '../../core/names.js';
import type { StepResult } from '../../core/plan/state.js';

const executor = proxyActivities<ReturnType<typeof createExecutorActivities>>({
  taskQueue: TASK_QUEUES.sandbox,
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 1 },
});

export async function rogueRunWorkflow(input: ShellStepInput): Promise<StepResult> {
  return executor.runShellStep(input);
}
