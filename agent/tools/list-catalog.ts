import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { answer, guarded, type AgentContext } from '../context.js';

export function registerListCatalog(server: McpServer, context: AgentContext): void {
  server.registerTool(
    'list_catalog',
    {
      title: 'List the MCP catalog',
      description:
        "The MCP servers and tools that call_tool (and `mcp` steps) may use, with each tool's description and input schema as pinned by the operator.",
      inputSchema: {},
      outputSchema: {
        servers: z.array(
          z.object({
            id: z.string(),
            description: z.string(),
            workspace: z.string(),
            network: z.string(),
            tools: z.array(z.object({ name: z.string(), description: z.string(), inputSchema: z.unknown() })),
          }),
        ),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () =>
      guarded(async () => {
        const catalog = await context.readCatalog();
        const servers = catalog.servers.map((s) => ({
          id: s.id,
          description: s.description,
          workspace: s.workspace,
          network: s.network,
          tools: Object.entries(s.tools).map(([name, t]) => ({
            name,
            description: t.description,
            inputSchema: t.inputSchema,
          })),
        }));
        return answer({ servers });
      }),
  );
}
