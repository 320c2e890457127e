/** Agent tokens over the registry: issue and revoke (signed by a device), check a presented token. */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { agentProposalKey, agentSecretSha256, formatAgentToken, parseAgentToken } from '../core/agents.js';
import { toBase64 } from '../core/bytes.js';
import type { Agent } from '../core/devices/registry.js';
import { signDeviceRecord } from '../core/devices/records.js';
import type { KeyPair } from '../core/keys.js';
import { SEARCH_ATTRIBUTES } from '../core/names.js';
import type { RegistryView } from '../workflows/messages.js';
import { addDeviceRecord } from './devices.js';
import { explain, UserFacingError } from './errors.js';
import { toWorkflowId } from './plans.js';

/** Issues a token for an agent, signed by `by`; the token is returned once and kept nowhere. */
export async function issueAgentToken(
  client: Client,
  by: KeyPair,
  name: string,
): Promise<{ agentId: string; token: string; view: RegistryView }> {
  const agentId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const record = signDeviceRecord(
    {
      type: 'issue-agent',
      agentId,
      name,
      secretSha256: agentSecretSha256(secret),
      proposalKey: toBase64(agentProposalKey(secret).publicKey),
      at: new Date().toISOString(),
    },
    by,
  );
  const view = await addDeviceRecord(client, record, 'issue agent token');
  return { agentId, token: formatAgentToken({ agentId, secret }), view };
}

export async function revokeAgentToken(
  client: Client,
  by: KeyPair,
  agentId: string,
  reason: string,
): Promise<RegistryView> {
  const record = signDeviceRecord(
    { type: 'revoke-agent', agentId, reason, at: new Date().toISOString() },
    by,
  );
  return addDeviceRecord(client, record, 'revoke agent token');
}

/** The agent a token belongs to, with the key it signs its proposals with (derived from the token). */
export function agentSession(view: RegistryView, token: string): { agent: Agent; proposalKey: KeyPair } {
  const agent = agentOfToken(view, token);
  return { agent, proposalKey: agentProposalKey(parseAgentToken(token)!.secret) };
}

/** The agent a presented token belongs to; a UserFacingError (`agent_token_*`) says why not. */
export function agentOfToken(view: RegistryView, token: string): Agent {
  const parsed = parseAgentToken(token);
  if (!parsed)
    throw new UserFacingError(
      'this is not a Countersign agent token (csa_<id>_<secret>)',
      'agent_token_malformed',
    );
  const agent = view.agents?.find((a) => a.agentId === parsed.agentId);
  // Both are 64 hex digits (the record's schema says so): compared in constant time.
  if (
    !agent ||
    !timingSafeEqual(Buffer.from(agentSecretSha256(parsed.secret)), Buffer.from(agent.secretSha256))
  )
    throw new UserFacingError('unknown agent token: ask a paired device to issue one', 'agent_token_unknown');
  if (agent.revoked)
    throw new UserFacingError(
      `agent token "${agent.name}" was revoked at ${agent.revoked.at}: ${agent.revoked.reason}`,
      'agent_token_revoked',
    );
  return agent;
}

/** Refuses unless `agent` proposed the plan (a sub-plan belongs to its top plan's proposer). */
export async function assertAgentOwns(client: Client, agent: Agent, planRef: string): Promise<string> {
  const workflowId = toWorkflowId(planRef);
  const top = workflowId.split('.')[0]!;
  const description = await client.workflow
    .getHandle(top)
    .describe()
    .catch((e: unknown) => explain(e, `read ${planRef}`));
  const owner = (description.searchAttributes as Record<string, unknown[] | undefined>)[
    SEARCH_ATTRIBUTES.agent.name
  ]?.[0];
  if (owner !== agent.agentId)
    // The same answer as for a plan that does not exist: an agent learns nothing about others' plans.
    throw new UserFacingError(`${planRef}: no such plan among this agent's plans`, 'not_found');
  return workflowId;
}
