/**
 * Whether a bundled plan's history is whole to its end: each run continues as the next, the last
 * one closes, and, once an executor signs results, its close is there to be checked. A history cut
 * after some step looks like a plan still running, so an open plan is not taken as verified: what
 * its close would have named cannot be checked. A history that bears an executor's signatures while
 * its device records introduce no executor key had a record taken out to switch those checks off.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { expectsAttestations } from '../../core/approval/attestation.js';
import type { DeviceRegistry } from '../../core/devices/registry.js';
import type { PlanTimeline, RunHistory } from '../history/index.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const closes = (event: HistoryEvent | undefined) =>
  Boolean(
    event?.workflowExecutionCompletedEventAttributes ??
    event?.workflowExecutionFailedEventAttributes ??
    event?.workflowExecutionCanceledEventAttributes ??
    event?.workflowExecutionTerminatedEventAttributes ??
    event?.workflowExecutionTimedOutEventAttributes,
  );

/** Whether the history carries what only a signing executor leaves: a signed result or close, the patch that asks for one. */
function bearsExecutorSignatures(runs: RunHistory[]): boolean {
  for (const run of runs)
    for (const event of run.events) {
      if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'attestPlanClose') return true;
      const marker = event.markerRecordedEventAttributes;
      if (marker?.markerName === 'core_patch') {
        const id = (marker.details?.['patch-data'] ?? marker.details?.patch_data)?.payloads?.[0];
        try {
          if (id && defaultPayloadConverter.fromPayload<{ id?: string }>(id)?.id === 'attest-plan-close')
            return true;
        } catch {
          // not a patch marker this code reads
        }
      }
      const result = event.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
      if (!result) continue;
      try {
        const value = defaultPayloadConverter.fromPayload<{ attestation?: unknown }>(result);
        if (value && typeof value === 'object' && value.attestation) return true;
      } catch {
        // not JSON: not a step result
      }
    }
  return false;
}

export interface EndingVerdict {
  problems: string[];
  warnings: string[];
}

/**
 * What is wrong with how the history of `workflowId` ends. `registry` is the chain the history
 * itself holds (undefined when it does not verify: that fails on its own).
 */
export function endingOf(
  workflowId: string,
  runs: RunHistory[],
  timeline: PlanTimeline,
  registry: DeviceRegistry | undefined,
): EndingVerdict {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i]!;
    const next = runs[i + 1];
    const continued = run.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes;
    if (next && continued?.newExecutionRunId !== next.runId)
      problems.push(
        `run ${run.runId} of ${workflowId} does not continue as run ${next.runId}, which follows it in the bundle: the chain of runs was cut or spliced`,
      );
    if (!next && continued)
      problems.push(
        `${workflowId} continued as new in run ${continued.newExecutionRunId ?? '?'}, which the bundle lacks: its history is cut short`,
      );
  }
  const signing = registry !== undefined && expectsAttestations(registry);
  if (registry && !signing && bearsExecutorSignatures(runs))
    problems.push(
      `the history of ${workflowId} bears an executor's signatures, and the device records it holds introduce no executor key: a record was taken out, so what ran cannot be checked`,
    );
  else if (registry && !signing && timeline.steps.some((s) => s.attempts > 0))
    warnings.push(
      `what ran in ${workflowId} is not signed by an executor: its device records introduce no executor key (recorded before executors signed results); this audit shows what was approved, not what ran`,
    );

  const last = runs.at(-1);
  if (
    !last ||
    closes(last.events.at(-1)) ||
    last.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes
  )
    return { problems, warnings };
  const after = timeline.entries.filter((e) => e.runId === last.runId && e.step !== undefined).at(-1);
  const where = `ends at event ${String(last.events.at(-1)?.eventId ?? 0)}${after ? `, after step "${after.step}" (${after.kind.replace(/_/g, ' ')}),` : ''} without the plan's end`;
  if (signing)
    problems.push(
      `the history of ${workflowId} ${where} and so without the close signed by the executor: it was cut short, or the plan had not ended when it was exported (export it again once it has ended)`,
    );
  else
    warnings.push(
      `the history of ${workflowId} ${where}: the plan had not ended when it was exported, or its history was cut short`,
    );
  return { problems, warnings };
}
