/** Submits a plan on an agent's behalf and reports what awaits approval once its first gate opens. */
import { setTimeout as sleep } from 'node:timers/promises';
import { planViewTree, submitPlan } from '../services/plans.js';
import type { AgentContext } from './context.js';
import { planReport, type PlanReport } from './report.js';

const FIRST_GATE_WAIT_MS = 3_000;

export async function propose(context: AgentContext, plan: unknown): Promise<PlanReport> {
  const { agent, client } = context;
  const { planId } = await submitPlan(client, plan, {
    proposer: `agent "${agent.name}" (${agent.agentId})`,
    agentId: agent.agentId,
    signer: { key: context.proposalKey, proposer: { agent: agent.agentId } },
    anchor: context.anchor,
  });
  // Plans validate before they start, then open their first gate within a moment.
  const deadline = Date.now() + FIRST_GATE_WAIT_MS;
  for (;;) {
    const report = await planViewTree(client, planId)
      .then(planReport)
      .catch(() => undefined);
    if (report && (report.awaitingApproval.length || report.done || Date.now() > deadline)) return report;
    if (!report && Date.now() > deadline)
      return {
        planId,
        workflowId: `plan-${planId}`,
        name: '',
        status: 'running',
        done: false,
        steps: [],
        awaitingApproval: [],
      };
    await sleep(100);
  }
}
