/**
 * What the web app reads about plans, built from workflow queries and visibility: the detail of
 * one plan (its live tree with running output), and the inbox of gates awaiting one device.
 */
import type { Client } from '@temporalio/client';
import type { PlanView } from '../../core/plan/state.js';
import {
  listPlans,
  liveOutput,
  planView,
  planViewTree,
  toWorkflowId,
  type PlanListing,
  type PlanViewTree,
} from '../../services/plans.js';
import type { InboxItem, PlanDetail, PlanListItem } from '../types.js';

export type { InboxItem, PlanDetail, PlanListItem };

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

/** A link to the raw events of a workflow in the Temporal Web UI, when there is one. */
export function temporalUiLink(
  temporalUiUrl: string | null,
  namespace: string,
  workflowId: string,
): string | null {
  return (
    temporalUiUrl &&
    `${temporalUiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`
  );
}

const CLOSED_PLAN_STATUSES: readonly string[] = ['succeeded', 'failed', 'cancelled'];

/**
 * Reads plan details. The view of a plan whose workflows have all closed never changes, and
 * asking a closed workflow means replaying its whole history on the control worker, so those
 * are kept (the most recent few hundred).
 */
export class PlanReader {
  private readonly closed = new Map<string, PlanDetail>();

  constructor(
    readonly client: Client,
    private readonly temporalUiUrl: string | null,
    private readonly keep = 300,
  ) {}

  async detail(planRef: string): Promise<PlanDetail> {
    const workflowId = toWorkflowId(planRef);
    const kept = this.closed.get(workflowId);
    if (kept) return kept;
    const tree = await planViewTree(this.client, planRef);
    const output: Record<string, string> = {};
    if (hasRunningStep(tree)) await collectOutput(this.client, tree, '', output);
    const detail = {
      tree,
      output,
      temporalUiUrl: temporalUiLink(this.temporalUiUrl, this.client.options.namespace, tree.view.workflowId),
    };
    if (await this.allClosed(tree)) {
      if (this.closed.size >= this.keep) this.closed.delete(this.closed.keys().next().value!);
      this.closed.set(workflowId, detail);
    }
    return detail;
  }

  private async allClosed(tree: PlanViewTree): Promise<boolean> {
    if (!CLOSED_PLAN_STATUSES.includes(tree.view.status)) return false;
    for (const child of tree.children) if (!(await this.allClosed(child))) return false;
    // The status is final a moment before the workflow ends: only a closed execution is kept.
    const description = await this.client.workflow
      .getHandle(tree.view.workflowId)
      .describe()
      .catch(() => undefined);
    return !!description && description.status.name !== 'RUNNING';
  }
}

/** The views of every plan that awaits a decision: read once, then filtered for each device. */
export async function awaitingViews(client: Client): Promise<PlanView[]> {
  const awaiting = await listPlans(client, { awaitingOnly: true, limit: 200 });
  const views = await Promise.all(awaiting.map((p) => planView(client, p.workflowId).catch(() => undefined)));
  return views.filter((v): v is PlanView => !!v);
}

/** Gates in `views` awaiting a decision that this device has not given yet, oldest first. */
export function inboxFrom(views: readonly PlanView[], keyId: string): InboxItem[] {
  const items: InboxItem[] = [];
  for (const view of views) {
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

export async function inboxOf(client: Client, keyId: string): Promise<InboxItem[]> {
  return inboxFrom(await awaitingViews(client), keyId);
}
