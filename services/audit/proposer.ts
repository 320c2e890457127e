/**
 * Who proposed a bundled plan, as an auditor can tell it: the signed proposal in the plan's start
 * input, verified against the device records the plan started with (chained to the given root).
 * The `proposer` text beside it is a label nobody signed; it may not name someone other than the
 * signer, and a plan without a signed proposal (the web app, older clients) is said to be unsigned
 * rather than shown as verified.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { verifyProposal, type Proposer } from '../../core/approval/proposal.js';
import type { Envelope } from '../../core/approval/dsse.js';
import { DeviceRegistry } from '../../core/devices/registry.js';
import type { PlanWorkflowInput } from '../../workflows/messages.js';
import type { RunHistory } from '../history/index.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface ProposerVerdict {
  workflowId: string;
  /** The unsigned label the plan was started with. */
  label: string;
  /** Who signed the proposal, when it verifies. */
  signed?: { proposer: Proposer; text: string } | undefined;
  /** Why the proposer does not verify (a failure); absent when it verifies or when there is no proposal. */
  problem?: string | undefined;
  /** The plan carries no signed proposal. */
  unsigned?: boolean | undefined;
  /** The proposal envelope as recorded, to compare a sub-plan's with its plan's. */
  proposal?: Envelope | undefined;
}

function startInput(events: HistoryEvent[]): PlanWorkflowInput | undefined {
  const payload = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  try {
    return payload ? defaultPayloadConverter.fromPayload<PlanWorkflowInput>(payload) : undefined;
  } catch {
    return undefined;
  }
}

function startMs(events: HistoryEvent[]): number {
  const t = events[0]?.eventTime;
  return t ? Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
}

/** Key ids (or their first 8+ hex characters) a label names, as the CLI, the API and agents write them. */
const namedIds = (label: string) => label.toLowerCase().match(/[0-9a-f]{8,}/g) ?? [];

/**
 * The proposer of one bundled workflow. `registry` is the bundle's final registry (for a device
 * revoked before the plan started), undefined when its records do not chain to the root.
 */
export function proposerOf(
  workflowId: string,
  runs: RunHistory[],
  rootKeyId: string | undefined,
  finalRegistry: DeviceRegistry | undefined,
): ProposerVerdict {
  const events = runs[0]?.events ?? [];
  const input = startInput(events);
  const label = typeof input?.proposer === 'string' ? input.proposer : '';
  if (!input) return { workflowId, label, problem: 'its start input cannot be read' };
  if (input.proposal === undefined || input.proposal === null) return { workflowId, label, unsigned: true };
  const proposal = input.proposal;
  let registry: DeviceRegistry;
  try {
    registry = DeviceRegistry.fromRecords(input.trustRecords ?? [], rootKeyId);
  } catch (error) {
    return {
      workflowId,
      label,
      proposal,
      problem: `it cannot be checked: the device records the plan started with do not chain to the root (${(error as Error).message})`,
    };
  }
  let proposer: Proposer;
  try {
    proposer = verifyProposal(proposal, { workflowId, registry, raw: input.plan }).proposer;
  } catch (error) {
    return { workflowId, label, proposal, problem: (error as Error).message };
  }
  const signerId = 'device' in proposer ? proposer.device : proposer.agent;
  const name =
    'device' in proposer ? registry.get(proposer.device)?.name : registry.agent(proposer.agent)?.name;
  const text = `${'device' in proposer ? 'device' : 'agent'} "${name ?? signerId}" (signed proposal, ${signerId.slice(0, 12)}…)`;
  const others = [
    ...registry.list().map((d) => ({ id: d.keyId, who: `device "${d.name}"` })),
    ...registry.listAgents().map((a) => ({ id: a.agentId, who: `agent "${a.name}"` })),
  ].filter((o) => o.id !== signerId);
  for (const id of namedIds(label)) {
    if (signerId.startsWith(id)) continue;
    const other = others.find((o) => o.id.startsWith(id));
    if (other)
      return {
        workflowId,
        label,
        proposal,
        problem: `the plan says ${other.who} proposed it ("${label}"), and the signed proposal is by ${text}`,
      };
  }
  const agentId = input.agentId;
  if (agentId !== undefined && agentId !== null && !('agent' in proposer && proposer.agent === agentId))
    return {
      workflowId,
      label,
      proposal,
      problem: `the plan names agent ${String(agentId)} as its proposer, and the signed proposal is by ${text}`,
    };
  const revoked =
    'device' in proposer
      ? finalRegistry?.get(proposer.device)?.revoked
      : finalRegistry?.agent(proposer.agent)?.revoked;
  const startedAt = startMs(events);
  if (revoked && Date.parse(revoked.at) <= startedAt)
    return {
      workflowId,
      label,
      proposal,
      problem: `it is signed by ${text}, revoked at ${revoked.at}, before the plan started at ${new Date(startedAt).toISOString()}`,
    };
  return { workflowId, label, proposal, signed: { proposer, text } };
}
