/**
 * Countersign as an MCP server for coding agents: the agent proposes, a person countersigns on
 * a device, the sandbox executes, the agent reads the result. One server per agent session,
 * bound to the agent whose token opened it. No tool approves, changes devices, or reads another
 * agent's plans.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AgentContext } from './context.js';
import { registerCallTool } from './tools/call-tool.js';
import { registerCancelPlan } from './tools/cancel-plan.js';
import { registerListCatalog } from './tools/list-catalog.js';
import { registerPlanStatus } from './tools/plan-status.js';
import { registerProposePlan } from './tools/propose-plan.js';
import { registerRunCommand } from './tools/run-command.js';
import { registerWaitForPlan } from './tools/wait-for-plan.js';

export const AGENT_SERVER_NAME = 'countersign';

export function createAgentServer(context: AgentContext): McpServer {
  const server = new McpServer(
    { name: AGENT_SERVER_NAME, version: '0.1.0' },
    {
      instructions:
        'Every action goes through a plan that a person approves on their phone. Propose with run_command, call_tool or propose_plan, then wait_for_plan. A denial is an answer, not an error: read who denied and why, and adapt.',
    },
  );
  for (const register of [
    registerProposePlan,
    registerRunCommand,
    registerCallTool,
    registerPlanStatus,
    registerWaitForPlan,
    registerListCatalog,
    registerCancelPlan,
  ])
    register(server, context);
  return server;
}
