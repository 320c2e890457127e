/** How carefully a step should be approved, and whether a notification may offer one-tap decisions. */
import type { PlanPolicy, Risk, StepNode } from '../plan/types.js';

const RANK: Record<Risk | 'none', number> = { none: 0, low: 1, medium: 2, high: 3 };

/**
 * The plan's word when it gives one; otherwise: a checkpoint is low, an MCP call or a command is
 * medium, and a command in a plan whose workspace reaches the outside world is high.
 */
export function stepRisk(step: StepNode, egress: boolean): Risk {
  if (step.approval.risk) return step.approval.risk;
  if (step.kind === 'gate') return 'low';
  if (step.kind === 'shell' && egress) return 'high';
  return 'medium';
}

/** Approve and Deny on the notification itself, or only Review (which opens the app). */
export function offersOneTap(risk: Risk, policy: Pick<PlanPolicy, 'oneTapUpTo'>): boolean {
  return RANK[risk] <= RANK[policy.oneTapUpTo ?? 'medium'];
}
