/** How carefully a step should be approved, and whether a notification may offer one-tap decisions. */
import type { PlanPolicy, Risk, StepNode } from '../plan/types.js';

const RANK: Record<Risk | 'none', number> = { none: 0, low: 1, medium: 2, high: 3 };

/**
 * A checkpoint is low, an MCP call or a command is medium, a command in a plan whose workspace
 * reaches the outside world is high. The plan (written by an agent, perhaps) may ask for more
 * care with `approval.risk`, never for less.
 */
export function stepRisk(step: StepNode, egress: boolean): Risk {
  const derived: Risk = step.kind === 'gate' ? 'low' : step.kind === 'shell' && egress ? 'high' : 'medium';
  const declared = step.approval.risk;
  return declared && RANK[declared] > RANK[derived] ? declared : derived;
}

/** Approve and Deny on the notification itself, or only Review (which opens the app). */
export function offersOneTap(risk: Risk, policy: Pick<PlanPolicy, 'oneTapUpTo'>): boolean {
  return RANK[risk] <= RANK[policy.oneTapUpTo ?? 'medium'];
}

/** The installation's own ceiling (the control worker's setting), which no plan can raise. */
export function withinOneTapCeiling(risk: Risk, ceiling: OneTapCeiling): boolean {
  return RANK[risk] <= RANK[ceiling];
}

export type OneTapCeiling = 'none' | Risk;
