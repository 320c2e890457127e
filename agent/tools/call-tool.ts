import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { UserFacingError } from '../../services/errors.js';
import { answer, guarded, type AgentContext } from '../context.js';
import { propose } from '../propose.js';
import { PLAN_REPORT_SHAPE } from './shapes.js';

export function registerCallTool(server: McpServer, context: AgentContext): void {
  server.registerTool(
    'call_tool',
    {
      title: 'Call a catalog MCP tool (after approval)',
      description:
        'Propose a one-step plan that calls a tool of an MCP server from the Countersign catalog (see list_catalog), in a fresh sandboxed server: at once when a person has given this agent a standing approval covering the call, otherwise once a person approves it. Returns the plan id; call wait_for_plan for the result.',
      inputSchema: {
        server: z.string().min(1).max(100),
        tool: z.string().min(1).max(200),
        arguments: z.record(z.string(), z.unknown()).optional(),
        reason: z.string().max(200).optional().describe('why: becomes the plan name the approver sees'),
      },
      outputSchema: PLAN_REPORT_SHAPE,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async ({ server: serverId, tool, arguments: args, reason }) =>
      guarded(async () => {
        // Checked here too, so a call off the catalog is answered at once and starts no plan.
        const catalog = await context.readCatalog();
        const entry = catalog.servers.find((s) => s.id === serverId);
        if (!entry)
          throw new UserFacingError(
            `no server "${serverId}" in the catalog (it has ${catalog.servers.map((s) => s.id).join(', ')}); see list_catalog`,
            'unknown_server',
          );
        if (!entry.tools[tool])
          throw new UserFacingError(
            `server "${serverId}" allows no tool "${tool}" (it allows ${Object.keys(entry.tools).join(', ')}); see list_catalog`,
            'unknown_tool',
          );
        // `auto` asks for a standing approval a person signed; without one, a person decides.
        const step = { id: 'call', mcp: { server: serverId, tool, arguments: args ?? {} }, approval: 'auto' };
        return answer({
          ...(await propose(context, { name: reason ?? `call ${serverId}/${tool}`, steps: [step] })),
        });
      }),
  );
}
