/** A plan as an agent reads it: statuses, exit codes, outputs, who decided, and why a step was denied. */
import type { PlanView, PlanViewTree, StepView } from '../core/plan/state.js';

export interface StepReport {
  path: string;
  status: string;
  /** The step's gate: `required` waits for a person; `auto` runs on a standing approval a person signed, if one covers it. */
  approval: 'required' | 'auto';
  /** For an `auto` step no standing approval covered: why (a person decides instead). */
  noStandingApproval?: string;
  summary: string;
  exitCode?: number | null;
  output?: string;
  approvedBy?: string[];
  /** "denied by <device name>: <reason>" when a person said no. */
  denied?: string;
  error?: string;
}

export interface PlanReport {
  planId: string;
  workflowId: string;
  name: string;
  status: string;
  done: boolean;
  steps: StepReport[];
  /** Steps waiting for a person's decision right now (an auto step only once no standing approval covered it). */
  awaitingApproval: string[];
}

function stepReport(step: StepView, prefix: string): StepReport {
  const approvals = step.approvals.filter((a) => a.decision === 'approve');
  const denial = step.approvals.find((a) => a.decision === 'deny');
  return {
    path: `${prefix}${step.path}`,
    status: step.status,
    approval: step.node.approval.mode,
    summary: step.summary,
    ...(step.result ? { exitCode: step.result.exitCode, output: step.result.outputTail } : {}),
    ...(approvals.length
      ? {
          approvedBy: approvals.map((a) =>
            a.grant ? `standing approval "${a.grant.name}" (signed by ${a.grant.issuedBy})` : a.deviceName,
          ),
        }
      : {}),
    ...(step.grantNote && step.status === 'awaiting_approval' ? { noStandingApproval: step.grantNote } : {}),
    ...(denial
      ? { denied: `denied by ${denial.deviceName}${denial.reason ? `: ${denial.reason}` : ''}` }
      : {}),
    ...(step.error && !denial ? { error: step.error } : {}),
  };
}

function collect(tree: PlanViewTree, prefix: string, out: StepReport[]): void {
  for (const step of tree.view.steps) out.push(stepReport(step, prefix));
  for (const child of tree.children) {
    const sub = tree.view.subPlans.find((s) => s.workflowId === child.view.workflowId);
    collect(child, `${prefix}${sub?.path ?? child.view.planId}/`, out);
  }
}

const DONE: readonly string[] = ['succeeded', 'failed', 'cancelled'];

export function planReport(tree: PlanViewTree): PlanReport {
  const steps: StepReport[] = [];
  collect(tree, '', steps);
  const view: PlanView = tree.view;
  return {
    planId: view.planId,
    workflowId: view.workflowId,
    name: view.name,
    status: view.status,
    done: DONE.includes(view.status),
    steps,
    // An auto step is waiting for a person only once no standing approval covered it.
    awaitingApproval: steps
      .filter((s) => s.status === 'awaiting_approval' && (s.approval === 'required' || s.noStandingApproval))
      .map((s) => s.path),
  };
}
