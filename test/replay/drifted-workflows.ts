/**
 * A deliberately non-deterministic variant of the plan workflow: it sleeps before doing what
 * the real one does. Replaying recorded histories against it must fail, which proves the
 * replay test can catch a drifted workflow.
 */
import { sleep } from '@temporalio/workflow';
import { planWorkflow as realPlanWorkflow } from '../../workflows/plan.js';
import type { PlanWorkflowInput } from '../../workflows/messages.js';

export async function planWorkflow(input: PlanWorkflowInput) {
  await sleep('1s');
  return realPlanWorkflow(input);
}
