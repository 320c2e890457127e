import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { assertAgentOwns } from '../../services/agents.js';
import { planViewTree } from '../../services/plans.js';
import { answer, guarded, type AgentContext } from '../context.js';
import { planReport } from '../report.js';
import { PLAN_REPORT_SHAPE } from './shapes.js';

export const PLAN_ID = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,200}$/)
  .describe('the plan id propose_plan returned');

export function registerPlanStatus(server: McpServer, context: AgentContext): void {
  server.registerTool(
    'plan_status',
    {
      title: 'Plan status',
      description:
        "The state of one of this agent's plans: each step's status, exit code, output, who approved or denied it.",
      inputSchema: { planId: PLAN_ID },
      outputSchema: PLAN_REPORT_SHAPE,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ planId }) =>
      guarded(async () => {
        const workflowId = await assertAgentOwns(context.client, context.agent, planId);
        return answer({ ...planReport(await planViewTree(context.client, workflowId)) });
      }),
  );
}
