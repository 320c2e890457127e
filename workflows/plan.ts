/**
 * The plan workflow: validates its input, wires the approval Update and the view Query to
 * the interpreter, and continues as new before the history grows long.
 */
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { ApprovalRefused } from '../core/approval/approval.js';
import { FAILURE_TYPES } from '../core/names.js';
import type { PlanResult } from '../core/plan/state.js';
import type { PlanSpec } from '../core/plan/types.js';
import { PlanValidationError, validatePlan } from '../core/plan/validate.js';
import { PlanInterpreter } from './interpreter.js';
import {
  approveUpdate,
  planViewQuery,
  trustRecordsSignal,
  type ApprovalSubmission,
  type PlanWorkflowInput,
} from './messages.js';

/** Temporal suggests continuing as new around 4–10K events; a long plan moves on well before that. */
const DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS = 4_000;

export async function planWorkflow(input: PlanWorkflowInput): Promise<PlanResult> {
  // Plans recorded before standing approvals replay with their own rules; every new plan may only ask.
  // A run continued by older code carries no flag: it belongs to such a plan.
  const legacyPlanRules = input.carried
    ? (input.carried.legacyPlanRules ?? true)
    : !patched('standing-grants');
  // Bounds on durations and text came later still: plans recorded before them replay without.
  const boundedPlan = input.carried ? input.carried.boundedPlan === true : patched('plan-bounds');
  let spec: PlanSpec;
  try {
    spec = validatePlan(input.plan, {
      planRules: legacyPlanRules ? 'legacy' : 'refuse',
      bounded: boundedPlan,
    });
  } catch (error) {
    if (error instanceof PlanValidationError)
      throw ApplicationFailure.nonRetryable(error.message, FAILURE_TYPES.invalidPlan, error.issues);
    throw error;
  }
  const info = workflowInfo();
  const interpreter = new PlanInterpreter(spec, input, info.workflowId, info.firstExecutionRunId, {
    legacyPlanRules,
    boundedPlan,
  });
  const continuedAsNew = input.carried?.continuedAsNew ?? 0;
  let outcome: Awaited<ReturnType<PlanInterpreter['run']>> | undefined;
  let cancellation: unknown;

  setHandler(planViewQuery, () => interpreter.view(interpreter.status(outcome), continuedAsNew));
  setHandler(trustRecordsSignal, ({ records }) => interpreter.adoptTrustRecords(records));
  setHandler(approveUpdate, (submission: ApprovalSubmission) => interpreter.applyApproval(submission), {
    validator: (submission: ApprovalSubmission) => {
      try {
        interpreter.checkApproval(submission);
      } catch (error) {
        if (error instanceof ApprovalRefused) {
          throw ApplicationFailure.create({
            message: `[${error.code}] ${error.message}`,
            type: FAILURE_TYPES.approvalRefused,
            nonRetryable: true,
            details: [error.code],
          });
        }
        throw ApplicationFailure.create({
          message: `[malformed_envelope] ${(error as Error).message}`,
          type: FAILURE_TYPES.approvalRefused,
          nonRetryable: true,
          details: ['malformed_envelope'],
        });
      }
    },
  });

  interpreter.publish();
  const running = interpreter.run().then(
    (result) => void (outcome = result),
    (error: unknown) => {
      if (!isCancellation(error)) throw error;
      cancellation = error;
      outcome = 'cancelled';
    },
  );
  const limit = input.options?.continueAsNewAfterEvents ?? DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS;
  const historyIsLong = () => workflowInfo().historyLength >= limit || workflowInfo().continueAsNewSuggested;

  // Not cancellable: when the plan is cancelled, the steps clean up (kill processes) before we return.
  await CancellationScope.nonCancellable(async () => {
    await condition(() => outcome !== undefined || historyIsLong());
    if (outcome === undefined) {
      interpreter.draining = true;
      await condition(() => outcome !== undefined || interpreter.inFlight === 0);
    }
    await condition(allHandlersFinished);
  });
  if (outcome === undefined) {
    await continueAsNew<typeof planWorkflow>({ ...input, carried: interpreter.carry(continuedAsNew + 1) });
  }
  await running;
  await interpreter.attestClose(outcome!);
  await interpreter.releaseWorkspace();
  await interpreter.settleNotices();
  interpreter.publish(outcome);
  if (outcome === 'cancelled' && CancellationScope.current().consideredCancelled)
    throw cancellation ?? new CancelledFailure('plan cancelled by request');

  const view = interpreter.view(interpreter.status(outcome), continuedAsNew);
  const result: PlanResult = {
    planId: input.planId,
    workflowId: info.workflowId,
    status: outcome!,
    steps: view.steps.map((s) => ({ path: s.path, status: s.status, exitCode: s.result?.exitCode })),
    subPlans: view.subPlans,
  };
  if (outcome !== 'succeeded') {
    const failed = view.steps.filter((s) => ['failed', 'denied', 'timed_out'].includes(s.status));
    const subFailed = view.subPlans.filter((s) => s.status === 'failed');
    const reasons = [
      ...failed.map((s) => `${s.path} ${s.status.replace('_', ' ')}${s.error ? ` (${s.error})` : ''}`),
      ...subFailed.map((s) => `sub-plan ${s.path} failed`),
    ];
    throw ApplicationFailure.create({
      message: `plan "${spec.name}" ${outcome}: ${reasons.join('; ') || outcome}`,
      type: FAILURE_TYPES.planFailed,
      nonRetryable: true,
      details: [result],
    });
  }
  return result;
}
