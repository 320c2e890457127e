import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { assertAgentOwns } from '../../services/agents.js';
import { cancelPlan } from '../../services/plans.js';
import { answer, guarded, type AgentContext } from '../context.js';
import { PLAN_ID } from './plan-status.js';

export function registerCancelPlan(server: McpServer, context: AgentContext): void {
  server.registerTool(
    'cancel_plan',
    {
      title: 'Cancel a plan',
      description: "Cancels one of this agent's plans: waiting steps never run, running steps are stopped.",
      inputSchema: { planId: PLAN_ID },
      outputSchema: { planId: z.string(), cancelling: z.boolean() },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async ({ planId }) =>
      guarded(async () => {
        const workflowId = await assertAgentOwns(context.client, context.agent, planId);
        await cancelPlan(context.client, workflowId);
        return answer({ planId, cancelling: true });
      }),
  );
}
