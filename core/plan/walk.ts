import type { PlanNode, PlanSpec, StepNode, SubPlanNode } from './types.js';

/** Every step of a plan in document order (sub-plans excluded: they are their own workflows). */
export function planSteps(plan: PlanSpec): StepNode[] {
  const out: StepNode[] = [];
  const visit = (node: PlanNode): void => {
    if (node.type === 'step') out.push(node);
    else if (node.type === 'sequence' || node.type === 'parallel') node.children.forEach(visit);
  };
  visit(plan.root);
  return out;
}

export function subPlans(plan: PlanSpec): SubPlanNode[] {
  const out: SubPlanNode[] = [];
  const visit = (node: PlanNode): void => {
    if (node.type === 'plan') out.push(node);
    else if (node.type === 'sequence' || node.type === 'parallel') node.children.forEach(visit);
  };
  visit(plan.root);
  return out;
}
