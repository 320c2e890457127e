/**
 * The audit bundle: one JSON file with a plan's raw Temporal histories (every run, and its
 * sub-plans'), every approval envelope, the device records chaining approvers to the root, and a
 * manifest. It is made from the server once; after that `verifyBundle` needs nothing but the
 * file and the root device it is asked to trust.
 */
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { Client } from '@temporalio/client';
import { sha256Hex } from '../../core/bytes.js';
import type { Envelope } from '../../core/approval/dsse.js';
import { fetchChain, timelineFromRuns } from '../history/index.js';
import { registryView } from '../devices.js';
import { toWorkflowId } from '../plans.js';

export const BUNDLE_FORMAT = 'countersign-audit/v1';

export interface BundledWorkflow {
  workflowId: string;
  /** Each run of the continue-as-new chain, first first: its history as Temporal's proto JSON. */
  runs: { runId: string; history: { events: unknown[] } }[];
}

export interface AuditBundle {
  format: typeof BUNDLE_FORMAT;
  manifest: {
    planWorkflowId: string;
    exportedAt: string;
    /** The root device the exporter trusted: a verifier pins its own (`--root`) rather than believe this. */
    rootKeyId: string | undefined;
    /** SHA-256 of each workflow's runs as canonical text: catches a file damaged or edited carelessly. */
    workflows: { workflowId: string; runs: number; events: number; sha256: string }[];
    approvals: number;
    deviceRecords: number;
  };
  /** The plan first, then its sub-plans (depth first). */
  workflows: BundledWorkflow[];
  /** Every approval envelope in the histories, in history order (copies, for readers; verification uses the histories). */
  approvals: Envelope[];
  /** The device records the histories vouch for, root first. */
  deviceRecords: Envelope[];
}

export function workflowDigest(workflow: BundledWorkflow): string {
  return sha256Hex(JSON.stringify(workflow.runs));
}

export async function exportBundle(
  client: Client,
  planRef: string,
  options: { pinnedRootKeyId?: string | undefined } = {},
): Promise<AuditBundle> {
  const workflows: BundledWorkflow[] = [];
  const approvals: Envelope[] = [];
  let deviceRecords: Envelope[] = [];
  const visit = async (workflowId: string, ref: string) => {
    const runs = await fetchChain(client, workflowId, ref);
    const { deviceRecords: records, envelopes, children } = timelineFromRuns(workflowId, runs, options);
    workflows.push({
      workflowId,
      runs: runs.map((run) => ({
        runId: run.runId,
        history: JSON.parse(historyToJSON({ events: run.events })) as { events: unknown[] },
      })),
    });
    approvals.push(...envelopes);
    if (records.length > deviceRecords.length) deviceRecords = records;
    for (const child of children) await visit(child, child);
  };
  const planWorkflowId = toWorkflowId(planRef);
  await visit(planWorkflowId, planRef);
  // The registry's records as they stand now, when they extend the plan's: a revocation the plan
  // never heard of (of a standing approval it ran on, say) belongs in the audit too.
  const latest = (await registryView(client)).records;
  if (
    latest.length > deviceRecords.length &&
    deviceRecords.every((r, i) => r.signatures[0].sig === latest[i]?.signatures[0].sig)
  )
    deviceRecords = latest;
  return {
    format: BUNDLE_FORMAT,
    manifest: {
      planWorkflowId,
      exportedAt: new Date().toISOString(),
      rootKeyId: options.pinnedRootKeyId,
      workflows: workflows.map((w) => ({
        workflowId: w.workflowId,
        runs: w.runs.length,
        events: w.runs.reduce((n, r) => n + r.history.events.length, 0),
        sha256: workflowDigest(w),
      })),
      approvals: approvals.length,
      deviceRecords: deviceRecords.length,
    },
    workflows,
    approvals,
    deviceRecords,
  };
}
