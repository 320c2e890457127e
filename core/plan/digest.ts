/**
 * Step digest: SHA-256 over the canonical encoding of everything that decides what a step does.
 * Approving a step means signing this digest; changing one byte of the step changes it.
 */
import { sha256Hex } from '../bytes.js';
import { canonicalJson } from '../canonical.js';
import { parseDuration } from '../duration.js';
import type { McpPin } from '../mcp/catalog.js';
import type { StepNode } from './types.js';

const DOMAIN = 'countersign/step-digest/v1\n';

/**
 * The exact object that is hashed; also shown to approvers so they see what they sign.
 * `mcpPin`: for an `mcp` step, its call as matched to the catalog (image and tool hash).
 */
export function stepDigestInput(
  step: StepNode,
  workspaceId: string,
  egress = false,
  mcpPin?: McpPin,
): Record<string, unknown> {
  const common = {
    v: 1,
    kind: step.kind,
    id: step.id,
    approval: step.approval.mode,
    quorum: step.approval.quorum,
  };
  switch (step.kind) {
    case 'shell':
      return {
        ...common,
        run: step.run,
        cwd: step.cwd,
        env: step.env,
        timeoutMs: parseDuration(step.timeout),
        workspace: workspaceId,
        // Only when on: digests of steps without network stay what they always were.
        ...(egress ? { network: 'egress' } : {}),
      };
    case 'gate':
      return { ...common, gate: step.gate };
    case 'mcp':
      if (!mcpPin || mcpPin.server !== step.server || mcpPin.tool !== step.tool)
        throw new Error(
          `step "${step.path}" calls ${step.server}/${step.tool}, and no catalog pin for it was given`,
        );
      return {
        ...common,
        server: step.server,
        image: mcpPin.image,
        tool: step.tool,
        toolSha256: mcpPin.toolSha256,
        arguments: step.arguments,
        timeoutMs: parseDuration(step.timeout),
        network: mcpPin.network,
        serverConfig: mcpPin.configSha256,
        // The words approvers read are signed too: a control plane that shows other words fails at the executor.
        toolDescription: mcpPin.description,
        // Only when pinned: digests of calls pinned before annotations were read stay what they were.
        ...(mcpPin.readOnly !== undefined ? { readOnly: mcpPin.readOnly } : {}),
        ...(mcpPin.workspace === 'none' ? {} : { workspace: workspaceId, workspaceAccess: mcpPin.workspace }),
      };
  }
}

/** `egress`: the plan's workspace reaches the outside world (the plan's `egress: true`). */
export function stepDigest(step: StepNode, workspaceId: string, egress = false, mcpPin?: McpPin): string {
  return sha256Hex(DOMAIN + canonicalJson(stepDigestInput(step, workspaceId, egress, mcpPin)));
}
