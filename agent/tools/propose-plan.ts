import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { parsePlanDocument } from '../../core/plan/parse.js';
import { answer, guarded, type AgentContext } from '../context.js';
import { propose } from '../propose.js';
import { PLAN_REPORT_SHAPE } from './shapes.js';

export function registerProposePlan(server: McpServer, context: AgentContext): void {
  server.registerTool(
    'propose_plan',
    {
      title: 'Propose a plan',
      description:
        'Propose a Countersign plan (YAML text or a JSON object): sequential and parallel steps, shell commands (`run`), MCP tool calls (`mcp`), human gates and sub-plans. A step runs only once a person approves it on their device, or, for a step marked `approval: auto`, when a standing approval a person signed covers exactly that step. Returns the plan id and the steps awaiting approval; then call wait_for_plan.',
      inputSchema: {
        plan: z
          .union([z.string().max(60_000), z.record(z.string(), z.unknown())])
          .describe('the plan, as YAML text or as an object'),
      },
      outputSchema: PLAN_REPORT_SHAPE,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async ({ plan }) =>
      guarded(async () => {
        const raw = typeof plan === 'string' ? parsePlanDocument(plan).raw : plan;
        return answer({ ...(await propose(context, raw)) });
      }),
  );
}
