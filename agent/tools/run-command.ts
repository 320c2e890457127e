import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { answer, guarded, type AgentContext } from '../context.js';
import { propose } from '../propose.js';
import { PLAN_REPORT_SHAPE } from './shapes.js';

export function registerRunCommand(server: McpServer, context: AgentContext): void {
  server.registerTool(
    'run_command',
    {
      title: 'Run one command (after approval)',
      description:
        'Propose a one-step plan that runs a shell command in the sandbox workspace: at once when a person has given this agent a standing approval covering exactly this command, otherwise once a person approves it on their device. Returns the plan id; call wait_for_plan for the exit code and output.',
      inputSchema: {
        command: z.string().min(1).max(16_000).describe('the shell command'),
        cwd: z.string().max(400).optional().describe('working directory, relative to the workspace root'),
        timeout: z.string().max(10).optional().describe('time limit such as 30s, 10m (default 30m)'),
        reason: z.string().max(200).optional().describe('why: becomes the plan name the approver sees'),
      },
      outputSchema: PLAN_REPORT_SHAPE,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    async ({ command, cwd, timeout, reason }) =>
      guarded(async () => {
        // `auto` asks for a standing approval a person signed; without one, a person decides.
        const step = {
          id: 'command',
          run: command,
          approval: 'auto',
          ...(cwd ? { cwd } : {}),
          ...(timeout ? { timeout } : {}),
        };
        return answer({ ...(await propose(context, { name: reason ?? 'run a command', steps: [step] })) });
      }),
  );
}
