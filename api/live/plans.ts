/**
 * What the web app reads about plans, built from workflow queries and visibility: the detail of
 * one plan (its live tree with running output), and the inbox of gates awaiting one device.
 */
import type { Client } from '@temporalio/client';
import type { PlanView, StepView } from '../../core/plan/state.js';
import {
  listPlans,
  liveOutput,
  planView,
  planViewTree,
  type PlanListing,
  type PlanViewTree,
} from '../../services/plans.js';

export interface PlanDetail {
  tree: PlanViewTree;
  /** Output tail of each running step, keyed by its path from the top plan (`docs/write`). */
  output: Record<string, string>;
  temporalUiUrl: string | null;
}

export interface InboxItem {
  workflowId: string;
  runId: string;
  planId: string;
  planName: string;
  stepPath: string;
  kind: StepView['kind'];
  summary: string;
  awaitingSince: string | null;
  deadlineMs: number | null;
  approvals: number;
  quorum: number;
}

export interface PlanListItem {
  workflowId: string;
  name: string;
  status: string;
  awaiting: string[];
  startTime: string;
  closeTime: string | null;
}

export function listItem(plan: PlanListing): PlanListItem {
  return {
    workflowId: plan.workflowId,
    name: plan.name,
    status: plan.status,
    awaiting: plan.awaiting,
    startTime: plan.startTime.toISOString(),
    closeTime: plan.closeTime?.toISOString() ?? null,
  };
}

function hasRunningStep(tree: PlanViewTree): boolean {
  return tree.view.steps.some((s) => s.status === 'running') || tree.children.some(hasRunningStep);
}

async function collectOutput(
  client: Client,
  tree: PlanViewTree,
  prefix: string,
  out: Record<string, string>,
): Promise<void> {
  if (tree.view.steps.some((s) => s.status === 'running')) {
    for (const [path, tail] of await liveOutput(client, tree.view.workflowId).catch(
      () => new Map<string, string>(),
    ))
      out[`${prefix}${path}`] = tail;
  }
  for (const child of tree.children) {
    const sub = tree.view.subPlans.find((s) => s.workflowId === child.view.workflowId);
    await collectOutput(client, child, `${prefix}${sub?.path ?? child.view.planId}/`, out);
  }
}

export async function planDetail(
  client: Client,
  planRef: string,
  temporalUiUrl: string | null,
): Promise<PlanDetail> {
  const tree = await planViewTree(client, planRef);
  const output: Record<string, string> = {};
  if (hasRunningStep(tree)) await collectOutput(client, tree, '', output);
  return {
    tree,
    output,
    temporalUiUrl:
      temporalUiUrl &&
      `${temporalUiUrl}/namespaces/${encodeURIComponent(client.options.namespace)}/workflows/${encodeURIComponent(tree.view.workflowId)}`,
  };
}

/** Gates awaiting a decision that this device has not given yet, oldest first. */
export async function inboxOf(client: Client, keyId: string): Promise<InboxItem[]> {
  const awaiting = await listPlans(client, { awaitingOnly: true, limit: 200 });
  const views = await Promise.all(awaiting.map((p) => planView(client, p.workflowId).catch(() => undefined)));
  const items: InboxItem[] = [];
  for (const view of views.filter((v): v is PlanView => !!v)) {
    for (const step of view.steps) {
      if (step.status !== 'awaiting_approval' || step.approvals.some((a) => a.keyId === keyId)) continue;
      items.push({
        workflowId: view.workflowId,
        runId: view.runId,
        planId: view.planId,
        planName: view.name,
        stepPath: step.path,
        kind: step.kind,
        summary: step.summary,
        awaitingSince: step.awaitingSince ?? null,
        deadlineMs: step.deadlineMs ?? null,
        approvals: step.approvals.filter((a) => a.decision === 'approve').length,
        quorum: step.node.approval.quorum,
      });
    }
  }
  return items.sort((a, b) => (a.awaitingSince ?? '').localeCompare(b.awaitingSince ?? ''));
}
