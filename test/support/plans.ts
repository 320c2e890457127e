/** Helpers for driving plans in tests, through the same services the CLI uses. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { KeyPair } from '../../core/keys.js';
import type { PlanView, StepStatus } from '../../core/plan/state.js';
import { decide, planView, submitPlan } from '../../services/plans.js';

/** Polls the plan's query until `predicate` holds; fails with the last view when it does not. */
export async function waitForView(
  client: Client,
  planRef: string,
  predicate: (view: PlanView) => boolean,
  timeoutMs = 30_000,
): Promise<PlanView> {
  const deadline = Date.now() + timeoutMs;
  let last: PlanView | undefined;
  while (Date.now() < deadline) {
    try {
      last = await planView(client, planRef);
      if (predicate(last)) return last;
    } catch {
      // not started yet
    }
    await sleep(50);
  }
  throw new Error(
    `timed out waiting for plan ${planRef}; last view: ${JSON.stringify(last?.steps.map((s) => [s.path, s.status, s.error]))}`,
  );
}

type HistoryEvent = NonNullable<
  Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>['events']
>[number];

/** Polls a workflow's history until an event satisfies `predicate`; fails saying what it waited for. */
export async function waitForHistory(
  client: Client,
  workflowId: string,
  predicate: (event: HistoryEvent) => boolean,
  timeoutMs = 30_000,
): Promise<HistoryEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const found = events.find(predicate);
    if (found) return found;
    await sleep(50);
  }
  throw new Error(`timed out waiting for an event in the history of ${workflowId}`);
}

export function stepStatus(view: PlanView, path: string): StepStatus | undefined {
  return view.steps.find((s) => s.path === path)?.status;
}

export async function waitForStep(
  client: Client,
  planRef: string,
  path: string,
  status: StepStatus,
  timeoutMs?: number,
): Promise<PlanView> {
  return waitForView(client, planRef, (v) => stepStatus(v, path) === status, timeoutMs);
}

export const stepOf = (view: PlanView, path: string) => view.steps.find((s) => s.path === path)!;

/**
 * Submits a plan, approves every step as it reaches its gate (signed by `root`), and returns the
 * final view once the plan has ended. `submitted` collects the plan id as soon as it exists, for
 * cleanup even when the plan fails.
 */
export async function runApproved(
  client: Client,
  root: KeyPair,
  plan: Record<string, unknown>,
  submitted?: string[],
): Promise<PlanView> {
  const { planId, workflowId } = await submitPlan(client, plan, { proposer: 'test' });
  submitted?.push(planId);
  const approved = new Set<string>();
  let done = false;
  void client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined)
    .then(() => (done = true));
  while (!done) {
    const view = await planView(client, planId).catch(() => undefined);
    for (const step of view?.steps ?? [])
      if (step.status === 'awaiting_approval' && !approved.has(step.path)) {
        approved.add(step.path);
        await decide(client, root, planId, step.path, { decision: 'approve' });
      }
    await sleep(100);
  }
  return planView(client, planId);
}
