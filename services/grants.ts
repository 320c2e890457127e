/**
 * Standing approvals over the registry: a device issues and revokes them (signed records); the
 * control worker looks for one that covers a step that asked for it, spends a use, and signs an
 * approval that names it; the registry's new records reach every open plan.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { signApproval } from '../core/approval/approval.js';
import type { Envelope } from '../core/approval/dsse.js';
import { verifyProposedStep } from '../core/approval/proposal.js';
import { cachedRegistry } from '../core/devices/registry-cache.js';
import { signDeviceRecord } from '../core/devices/records.js';
import { buildGrantRecord, type GrantDraft, type GrantRecord } from '../core/grants/grant.js';
import type { GrantedStep } from '../core/grants/match.js';
import { coveringGrants } from '../core/grants/select.js';
import type { KeyPair } from '../core/keys.js';
import type { McpPin } from '../core/mcp/catalog.js';
import { REGISTRY_WORKFLOW_ID } from '../core/names.js';
import type { StepNode } from '../core/plan/types.js';
import { spendGrantUseUpdate, trustRecordsSignal, type RegistryView } from '../workflows/messages.js';
import { addDeviceRecord, registryView } from './devices.js';
import { refusalOf, UserFacingError } from './errors.js';
import type { TrustAnchorFile } from './trust-anchor.js';

export type { GrantDraft };

/** The record for `draft`, with a fresh random id (core/grants/grant.ts buildGrantRecord). */
export function grantRecordOf(draft: GrantDraft, nowMs: number): GrantRecord {
  return buildGrantRecord(draft, nowMs, randomBytes(8).toString('hex'));
}

/** Signs `grant` with the device key `by` and adds it to the registry. */
export async function issueGrant(client: Client, by: KeyPair, grant: GrantRecord): Promise<RegistryView> {
  return addDeviceRecord(client, signDeviceRecord(grant, by), 'issue standing approval');
}

export async function revokeGrant(
  client: Client,
  by: KeyPair,
  grantId: string,
  reason: string,
): Promise<RegistryView> {
  const record = signDeviceRecord(
    { type: 'revoke-grant', grantId, reason, at: new Date().toISOString() },
    by,
  );
  return addDeviceRecord(client, record, 'revoke standing approval');
}

/** A step that asked for a standing approval, as the plan sends it to the control worker. */
export interface StandingGrantRequest {
  workflowId: string;
  runId: string;
  stepPath: string;
  stepDigest: string;
  step: StepNode;
  egress: boolean;
  mcpPin?: McpPin | undefined;
  /** The plan's own name; a verified proposal's signed name is used instead when there is one. */
  planName: string;
  proposal?: Envelope | undefined;
  /** The plan (or sub-plan) as written that the step comes from: the proposal must have signed it. */
  plan?: unknown;
}

export type StandingGrantAnswer =
  | { applied: true; envelope: Envelope; records: Envelope[]; grantId: string }
  /** `reason`: why no grant applies, for the person who decides instead. */
  | { applied: false; reason: string; records: Envelope[] };

/**
 * Finds a grant in force that covers the step, spends one of its uses (if it has a limit), and
 * signs an approval naming it with the policy key. The workflow and the executor check it all
 * again; this is where it is looked for, not where it is trusted.
 */
export async function applyStandingGrant(
  client: Client,
  policyKey: KeyPair,
  request: StandingGrantRequest,
  /** The control worker's chain: a registry replaced or rolled back applies no grant. */
  anchor?: TrustAnchorFile,
): Promise<StandingGrantAnswer> {
  let records: Envelope[];
  try {
    records = (await registryView(client, anchor)).records;
  } catch (error) {
    if (!(error instanceof UserFacingError)) throw error;
    return { applied: false, reason: error.message, records: [...((await anchor?.held()) ?? [])] };
  }
  const registry = cachedRegistry(records);
  let granted: GrantedStep = {
    step: request.step,
    egress: request.egress,
    mcpPin: request.mcpPin,
    planName: request.planName,
  };
  if (request.proposal) {
    try {
      const proposal = verifyProposedStep(request.proposal, {
        workflowId: request.workflowId,
        registry,
        raw: request.plan,
        step: request.step,
      });
      granted = { ...granted, planName: proposal.planName, proposer: proposal.proposer };
    } catch (error) {
      return { applied: false, reason: (error as Error).message, records };
    }
  }
  const now = Date.now();
  const { covering, misses } = coveringGrants(registry, granted, now);
  const useKey = `${request.workflowId}/${request.stepPath}/${request.stepDigest}`;
  const usedUp: string[] = [];
  for (const grant of covering) {
    let use: number | undefined;
    if (grant.record.maxUses !== undefined) {
      try {
        use = (
          await client.workflow
            .getHandle(REGISTRY_WORKFLOW_ID)
            .executeUpdate(spendGrantUseUpdate, { args: [{ grantId: grant.grantId, useKey }] })
        ).use;
      } catch (error) {
        usedUp.push(refusalOf(error)?.message ?? (error as Error).message);
        continue;
      }
    }
    const envelope = signApproval(
      {
        workflowId: request.workflowId,
        runId: request.runId,
        stepPath: request.stepPath,
        stepDigest: request.stepDigest,
        decision: 'approve',
        reason: `standing approval "${grant.record.name}"`,
        nowMs: now,
        ttlMs: 10 * 60_000,
        nonce: randomBytes(18).toString('base64url'),
        grant: { id: grant.grantId, sig: grant.sig },
        ...(use !== undefined ? { use } : {}),
      },
      policyKey,
    );
    return { applied: true, envelope, records, grantId: grant.grantId };
  }
  const reasons = [
    ...usedUp,
    ...misses.slice(0, 3).map((m) => `"${m.grant.record.name}" does not cover it: ${m.reason}`),
  ];
  return {
    applied: false,
    reason: reasons.length
      ? `no standing approval applies (${reasons.join('; ')})`
      : 'no standing approval covers this step',
    records,
  };
}

/** Tells every open plan of the registry's records (they adopt them if they extend their chain). */
export async function announceTrustRecords(client: Client, records: Envelope[]): Promise<number> {
  let told = 0;
  const query = "WorkflowType = 'planWorkflow' AND ExecutionStatus = 'Running'";
  for await (const execution of client.workflow.list({ query })) {
    await client.workflow
      .getHandle(execution.workflowId)
      .signal(trustRecordsSignal, { records })
      .then(() => told++)
      // A plan that closed in between has nothing to adopt.
      .catch(() => undefined);
  }
  return told;
}
