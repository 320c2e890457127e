/** Plan operations over the Temporal client: submit, list, show, approve or deny, cancel. */
import { randomBytes } from 'node:crypto';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { signApproval } from '../core/approval/approval.js';
import { planSha256, signProposal, subPlanHashes, type Proposer } from '../core/approval/proposal.js';
import type { KeyPair } from '../core/keys.js';
import { planWorkflowId, SEARCH_ATTRIBUTES, TASK_QUEUES } from '../core/names.js';
import { stepDigest } from '../core/plan/digest.js';
import type { PlanView, PlanViewTree, StepView } from '../core/plan/state.js';
import { validatePlan } from '../core/plan/validate.js';
import {
  approveUpdate,
  planViewQuery,
  type ApprovalApplied,
  type PlanWorkflowInput,
} from '../workflows/messages.js';
import { explain, UserFacingError } from './errors.js';
import { registryView } from './devices.js';
import type { TrustAnchorFile } from './trust-anchor.js';

export interface SubmittedPlan {
  planId: string;
  workflowId: string;
  runId: string;
}

export function newPlanId(): string {
  return randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').toLowerCase();
}

/** Validates the plan locally (nothing starts if it is bad) and starts its workflow. */
export async function submitPlan(
  client: Client,
  raw: unknown,
  options: {
    proposer: string;
    planId?: string;
    continueAsNewAfterEvents?: number;
    /** The agent token proposing it: recorded in the plan, and only that agent may read it. */
    agentId?: string;
    /** Signs the proposal (a CLI device's key, an agent's token-derived key): grants scoped to it can apply. */
    signer?: { key: KeyPair; proposer: Proposer };
    /** This process's chain: the registry must extend it (services/devices.ts registryView). */
    anchor?: TrustAnchorFile | undefined;
  },
): Promise<SubmittedPlan> {
  const spec = validatePlan(raw);
  const planId = options.planId ?? newPlanId();
  const { records } = await registryView(client, options.anchor);
  const proposal =
    options.signer &&
    signProposal(
      {
        workflowId: planWorkflowId(planId),
        planName: spec.name,
        planSha256: planSha256(raw),
        subPlans: subPlanHashes(spec),
        proposer: options.signer.proposer,
        at: new Date().toISOString(),
      },
      options.signer.key,
    );
  const input: PlanWorkflowInput = {
    planId,
    plan: raw,
    workspaceId: planId,
    proposer: options.proposer,
    agentId: options.agentId,
    trustRecords: records,
    ...(proposal ? { proposal } : {}),
    options: options.continueAsNewAfterEvents
      ? { continueAsNewAfterEvents: options.continueAsNewAfterEvents }
      : undefined,
  };
  const handle = await client.workflow.start('planWorkflow', {
    workflowId: planWorkflowId(planId),
    taskQueue: TASK_QUEUES.control,
    args: [input],
    searchAttributes: {
      [SEARCH_ATTRIBUTES.status.name]: ['running'],
      [SEARCH_ATTRIBUTES.planName.name]: [spec.name],
      ...(options.agentId ? { [SEARCH_ATTRIBUTES.agent.name]: [options.agentId] } : {}),
    },
  });
  return { planId, workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
}

/** Accepts `abc123`, `plan-abc123`, or a child id such as `plan-abc123.docs`. */
export function toWorkflowId(planRef: string): string {
  return planRef.startsWith('plan-') ? planRef : planWorkflowId(planRef);
}

export async function planView(client: Client, planRef: string): Promise<PlanView> {
  return client.workflow
    .getHandle(toWorkflowId(planRef))
    .query(planViewQuery)
    .catch((e: unknown) => explain(e, `show ${planRef}`));
}

export type { PlanViewTree };

/** The view of a plan and, recursively, of its sub-plans that have started. */
export async function planViewTree(client: Client, planRef: string): Promise<PlanViewTree> {
  const view = await planView(client, planRef);
  const started = view.subPlans.filter((s) => s.status !== 'pending' && s.status !== 'cancelled');
  const children = await Promise.all(
    started.map((s) => planViewTree(client, s.workflowId).catch(() => undefined)),
  );
  return { view, children: children.filter((c): c is PlanViewTree => c !== undefined) };
}

/** Finds the workflow and step for a path like `build` or `docs/write` (sub-plan id, then step). */
export async function resolveStep(
  client: Client,
  planRef: string,
  stepPath: string,
): Promise<{ view: PlanView; step: StepView }> {
  let view = await planView(client, planRef);
  const parts = stepPath.split('/');
  while (parts.length > 1) {
    const sub = view.subPlans.find((s) => s.path === parts[0]);
    if (!sub) throw new UserFacingError(`plan ${view.planId} has no sub-plan "${parts[0]}"`, 'unknown_step');
    if (sub.status === 'pending')
      throw new UserFacingError(`sub-plan "${sub.path}" has not started yet`, 'not_awaiting');
    view = await planView(client, sub.workflowId);
    parts.shift();
  }
  const step = view.steps.find((s) => s.path === parts[0]);
  if (!step)
    throw new UserFacingError(
      `plan ${view.planId} has no step "${parts[0]}" (steps: ${view.steps.map((s) => s.path).join(', ')})`,
      'unknown_step',
    );
  return { view, step };
}

export interface DecideOptions {
  decision: 'approve' | 'deny';
  reason?: string;
  ttlMs?: number;
  /** This process's chain: the records the approval travels with must extend it. */
  anchor?: TrustAnchorFile | undefined;
}

/**
 * Signs a decision on what the approver was shown: the digest is recomputed locally from the
 * step itself, so a control plane that shows one step and runs another gets a refused approval.
 */
export async function decide(
  client: Client,
  key: KeyPair,
  planRef: string,
  stepPath: string,
  options: DecideOptions,
): Promise<ApprovalApplied & { step: StepView }> {
  const { view, step } = await resolveStep(client, planRef, stepPath);
  const digest = stepDigest(step.node, view.workspaceId, view.egress, step.mcpPin);
  if (digest !== step.digest) {
    throw new UserFacingError(
      `step "${step.path}" as shown does not match its digest; refusing to sign (the server may be tampering)`,
      'wrong_digest',
    );
  }
  const { records } = await registryView(client, options.anchor);
  const envelope = signApproval(
    {
      workflowId: view.workflowId,
      runId: view.runId,
      stepPath: step.path,
      stepDigest: digest,
      decision: options.decision,
      reason: options.reason,
      nowMs: Date.now(),
      ttlMs: options.ttlMs,
      nonce: randomBytes(18).toString('base64url'),
    },
    key,
  );
  const applied = await client.workflow
    .getHandle(view.workflowId)
    .executeUpdate(approveUpdate, { args: [{ envelope, deviceRecords: records }] })
    .catch((e: unknown) => explain(e, `${options.decision} ${stepPath}`));
  return { ...applied, step };
}

export interface PlanListing {
  workflowId: string;
  name: string;
  status: string;
  awaiting: string[];
  startTime: Date;
  closeTime?: Date | undefined;
}

function listing(info: WorkflowExecutionInfo): PlanListing {
  const attrs = info.searchAttributes as Record<string, unknown[] | undefined>;
  return {
    workflowId: info.workflowId,
    name: String(attrs[SEARCH_ATTRIBUTES.planName.name]?.[0] ?? ''),
    status: String(attrs[SEARCH_ATTRIBUTES.status.name]?.[0] ?? info.status.name.toLowerCase()),
    awaiting: (attrs[SEARCH_ATTRIBUTES.awaiting.name] as string[] | undefined) ?? [],
    startTime: info.startTime,
    closeTime: info.closeTime,
  };
}

/** Lists plans from the visibility store (search attributes), without reading any history. */
export async function listPlans(
  client: Client,
  filter: { awaitingOnly?: boolean; limit?: number; agentId?: string } = {},
): Promise<PlanListing[]> {
  const query = [`WorkflowType = 'planWorkflow'`];
  if (filter.agentId)
    query.push(`${SEARCH_ATTRIBUTES.agent.name} = '${filter.agentId.replace(/[^0-9a-f]/g, '')}'`);
  if (filter.awaitingOnly)
    query.push(`${SEARCH_ATTRIBUTES.status.name} = 'awaiting_approval'`, `ExecutionStatus = 'Running'`);
  const out: PlanListing[] = [];
  for await (const info of client.workflow.list({ query: query.join(' AND ') })) {
    out.push(listing(info));
    if (out.length >= (filter.limit ?? 100)) break;
  }
  return out;
}

/**
 * Live output of a plan's running steps: the tail each executor attempt last reported in its
 * heartbeat. Keyed by step path.
 */
export async function liveOutput(client: Client, planRef: string): Promise<Map<string, string>> {
  const description = await client.workflow.getHandle(toWorkflowId(planRef)).describe();
  const tails = new Map<string, string>();
  for (const activity of description.raw.pendingActivities ?? []) {
    if (activity.activityType?.name !== 'runShellStep') continue;
    const details = activity.heartbeatDetails?.payloads?.[0];
    const beat =
      details &&
      (defaultPayloadConverter.fromPayload(details) as { step?: string; outputTail?: string } | undefined);
    if (beat?.step && beat.outputTail) tails.set(beat.step, beat.outputTail);
  }
  return tails;
}

export async function cancelPlan(client: Client, planRef: string): Promise<void> {
  await client.workflow
    .getHandle(toWorkflowId(planRef))
    .cancel()
    .catch((e: unknown) => explain(e, `cancel ${planRef}`));
}
