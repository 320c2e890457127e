import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { assertAgentOwns } from '../../services/agents.js';
import { planViewTree } from '../../services/plans.js';
import { answer, guarded, type AgentContext } from '../context.js';
import { planReport } from '../report.js';
import { PLAN_ID } from './plan-status.js';
import { PLAN_REPORT_SHAPE } from './shapes.js';

const POLL_MS = 100;

export function registerWaitForPlan(server: McpServer, context: AgentContext): void {
  server.registerTool(
    'wait_for_plan',
    {
      title: 'Wait for a plan',
      description:
        "Waits until one of this agent's plans finishes, or until the timeout, sending progress notifications as steps change. Returns every step's status, exit code, output and who approved it; a denied step says who denied it and why.",
      inputSchema: {
        planId: PLAN_ID,
        timeoutSeconds: z.number().int().min(1).max(3_600).optional().describe('default 300'),
      },
      outputSchema: PLAN_REPORT_SHAPE,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ planId, timeoutSeconds }, extra) =>
      guarded(async () => {
        const workflowId = await assertAgentOwns(context.client, context.agent, planId);
        const deadline = Date.now() + (timeoutSeconds ?? 300) * 1000;
        const progressToken = extra._meta?.progressToken;
        let last = '';
        let progress = 0;
        for (;;) {
          const report = planReport(await planViewTree(context.client, workflowId));
          const summary = report.steps.map((s) => `${s.path}: ${s.status}`).join(', ');
          if (summary !== last && progressToken !== undefined) {
            last = summary;
            await extra.sendNotification({
              method: 'notifications/progress',
              params: { progressToken, progress: ++progress, message: `${report.status} — ${summary}` },
            });
          }
          if (report.done || Date.now() >= deadline || extra.signal.aborted) return answer({ ...report });
          await sleep(POLL_MS);
        }
      }),
  );
}
