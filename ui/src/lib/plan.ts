/** Finding steps in a plan body: sub-plans are separate views under `tree.children`. */
import { planWorkflowId } from '../../../core/names.js';
import { stepDigest } from '../../../core/plan/digest.js';
import type { PlanView, PlanViewTree, StepView } from './types.js';

export interface FoundStep {
  view: PlanView;
  step: StepView;
}

/**
 * The step at `stepPath` (`build`, or `docs/write` for step `write` of sub-plan `docs`), in the
 * view that holds it. A path that a view holds whole wins over descending into a sub-plan.
 */
export function findStep(tree: PlanViewTree, stepPath: string): FoundStep | undefined {
  const direct = tree.view.steps.find((s) => s.path === stepPath);
  if (direct) return { view: tree.view, step: direct };
  const slash = stepPath.indexOf('/');
  if (slash < 0) return undefined;
  const head = stepPath.slice(0, slash);
  const sub = tree.view.subPlans.find((s) => s.path === head);
  const child = sub && tree.children.find((c) => c.view.workflowId === sub.workflowId);
  return child ? findStep(child, stepPath.slice(slash + 1)) : undefined;
}

/** The child tree of the sub-plan at `path` in `tree`, when it has started. */
export function childTree(tree: PlanViewTree, path: string): PlanViewTree | undefined {
  const sub = tree.view.subPlans.find((s) => s.path === path);
  return sub && tree.children.find((c) => c.view.workflowId === sub.workflowId);
}

export type DigestCheck = { ok: true; digest: string } | { ok: false; reason: string };

/** The workflow id a route names (`abc123` or `plan-abc123`, or a sub-plan's `plan-abc123.docs`). */
export function routeWorkflowId(ref: string): string {
  return ref.startsWith('plan-') ? ref : planWorkflowId(ref);
}

/**
 * Recomputes the step's digest here, from the step as shown, and checks that the step belongs to
 * the plan the person opened (the workflow the signature will name is that plan or one of its
 * sub-plans): a server that answers with another plan's step, relabelled, gets no signature.
 */
export function checkDigest(view: PlanView, step: StepView, openedWorkflowId: string): DigestCheck {
  const opened = routeWorkflowId(openedWorkflowId);
  if (view.workflowId !== opened && !view.workflowId.startsWith(`${opened}.`))
    return {
      ok: false,
      reason: `the server answered with a step of ${view.workflowId}, not of the plan you opened (${opened})`,
    };
  try {
    const digest = stepDigest(step.node, view.workspaceId, view.egress, step.mcpPin);
    return digest === step.digest
      ? { ok: true, digest }
      : {
          ok: false,
          reason: `the server shows a step that does not match its digest (recomputed ${digest})`,
        };
  } catch (e) {
    return {
      ok: false,
      reason: `the step's digest cannot be recomputed here: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

export function isTerminalPlan(status: string): boolean {
  return ['succeeded', 'failed', 'cancelled', 'terminated', 'timed_out'].includes(status);
}
