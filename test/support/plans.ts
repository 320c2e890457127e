/** Helpers for driving plans in tests, through the same services the CLI uses. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { PlanView, StepStatus } from '../../core/plan/state.js';
import { planView } from '../../services/plans.js';

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
