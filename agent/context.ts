/** What every agent tool needs: the Temporal client, the agent asking, and the MCP catalog. */
import type { Client } from '@temporalio/client';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Agent } from '../core/devices/registry.js';
import type { KeyPair } from '../core/keys.js';
import type { TrustAnchorFile } from '../services/trust-anchor.js';
import type { McpCatalog } from '../core/mcp/catalog.js';
import { PlanValidationError } from '../core/plan/validate.js';
import { UserFacingError } from '../services/errors.js';

export interface AgentContext {
  client: Client;
  agent: Agent;
  /** Signs the agent's proposals (derived from its token), so grants scoped to it can apply. */
  proposalKey: KeyPair;
  /** The serving process's chain: plans start with records that extend it. */
  anchor?: TrustAnchorFile | undefined;
  readCatalog: () => Promise<McpCatalog>;
}

/** A structured answer, with the same JSON as text for clients that read only text. */
export function answer(structured: Record<string, unknown>, text?: string): CallToolResult {
  return {
    content: [{ type: 'text', text: text ?? JSON.stringify(structured, null, 2) }],
    structuredContent: structured,
  };
}

/**
 * Failures an agent can act on come back as tool results with `isError` (a bad plan, a plan it
 * may not read), never as protocol errors; anything else is not explained beyond its message.
 */
export async function guarded(work: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await work();
  } catch (error) {
    const message =
      error instanceof UserFacingError || error instanceof PlanValidationError
        ? error.message
        : `the request failed: ${(error as Error).message ?? String(error)}`;
    return { content: [{ type: 'text', text: message }], isError: true };
  }
}
