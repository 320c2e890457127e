/**
 * Verifies an audit bundle offline, trusting only the root device it is given. For every step
 * of the plan and its sub-plans: the digest is recomputed from the plan in the history, every
 * approval is verified again (signature, digest, run, device chained to the root), and a step
 * that ran must have had approvals meeting its policy before it was scheduled. The histories
 * must be whole (event ids 1, 2, 3, … in order), end with the plan's close, and agree with the
 * bundle's own copies and manifest. What ran must be what an executor signed (each step's output,
 * exit code and times, and the plan's close), and the proposer must be who signed the proposal.
 * Each problem is reported with the step it touches.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import type { temporal } from '@temporalio/proto';
import { peekApprovalPayload } from '../../core/approval/approval.js';
import type { Envelope } from '../../core/approval/dsse.js';
import { decodeDeviceRecord } from '../../core/devices/records.js';
import { DeviceRegistry } from '../../core/devices/registry.js';
import { timelineFromRuns, type RunHistory } from '../history/index.js';
import type { TimelineApproval } from '../history/types.js';
import { BUNDLE_FORMAT, workflowDigest, type AuditBundle, type BundledWorkflow } from './bundle.js';
import { endingOf } from './ending.js';
import { proposerOf, type ProposerVerdict } from './proposer.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export class AuditBundleError extends Error {
  override readonly name = 'AuditBundleError';
}

export interface StepVerdict {
  workflowId: string;
  path: string;
  verdict: 'ok' | 'not_run' | 'failed';
  /** Who allowed it (ok), what became of it (not_run), or every reason it fails. */
  text: string;
  reasons: string[];
}

export interface BundleVerdict {
  ok: boolean;
  /** `bundle`: none was given, so the bundle's own claim is shown, and nothing verifies against it. */
  root: { keyId: string | undefined; source: 'given' | 'bundle' };
  /** Problems that belong to no one step. */
  problems: string[];
  /** What the bundle cannot vouch for without failing: an unsigned proposer, results nobody signed, a plan not yet ended. */
  warnings: string[];
  /** Who proposed the plan: the signed proposer, or the unsigned label (`signed: false`). */
  proposer: { signed: boolean; text: string };
  steps: StepVerdict[];
}

const sigOf = (envelope: Envelope | undefined) => envelope?.signatures?.[0]?.sig ?? '';

function decode<T>(payloads: temporal.api.common.v1.IPayloads | null | undefined): T | undefined {
  const payload = payloads?.payloads?.[0];
  try {
    return payload ? defaultPayloadConverter.fromPayload<T>(payload) : undefined;
  } catch {
    return undefined;
  }
}

function stepOfEnvelope(envelope: Envelope | undefined): string | undefined {
  const path = peekApprovalPayload(envelope)?.stepPath;
  return typeof path === 'string' ? path : undefined;
}

/** The step an event belongs to, where it says (activities of a step, approvals of a step). */
function stepIndex(events: HistoryEvent[]): Map<number, string> {
  const byEvent = new Map<number, string>();
  const scheduled = new Map<string, string>();
  for (const event of events) {
    const id = Number(event.eventId);
    const attrs = event.activityTaskScheduledEventAttributes;
    if (attrs) {
      const input = decode<{ step?: { path?: string }; stepPath?: string }>(attrs.input);
      const path = input?.stepPath ?? input?.step?.path;
      if (path) {
        byEvent.set(id, path);
        scheduled.set(String(event.eventId), path);
      }
      continue;
    }
    const ref =
      event.activityTaskStartedEventAttributes?.scheduledEventId ??
      event.activityTaskCompletedEventAttributes?.scheduledEventId ??
      event.activityTaskFailedEventAttributes?.scheduledEventId ??
      event.activityTaskTimedOutEventAttributes?.scheduledEventId;
    if (ref !== undefined && ref !== null && scheduled.has(String(ref))) {
      byEvent.set(id, scheduled.get(String(ref))!);
      continue;
    }
    const request =
      event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest ??
      event.workflowExecutionUpdateAdmittedEventAttributes?.request;
    const submission = decode<{ envelope?: Envelope }>(request?.input?.args);
    const path = stepOfEnvelope(submission?.envelope);
    if (path) byEvent.set(id, path);
  }
  return byEvent;
}

/** Holes and disorder in a run's events, each with the step whose events are nearest. */
function structuralProblems(runId: string, events: HistoryEvent[]): { step?: string; text: string }[] {
  const steps = stepIndex(events);
  const near = (index: number) => {
    for (let d = 0; d < 12; d++)
      for (const i of [index + d, index - d - 1]) {
        const path = steps.get(Number(events[i]?.eventId));
        if (path) return path;
      }
    return undefined;
  };
  const problems: { step?: string; text: string }[] = [];
  if (!events[0]?.workflowExecutionStartedEventAttributes)
    problems.push({ text: `run ${runId} does not begin with its start event` });
  for (let i = 0; i < events.length; i++) {
    const id = Number(events[i]!.eventId);
    if (id === i + 1) continue;
    const previous = i === 0 ? 0 : Number(events[i - 1]!.eventId);
    // The expected event further on means a swap; nowhere means a hole.
    const movedTo = events.findIndex((e, j) => j > i && Number(e.eventId) === i + 1);
    const text =
      movedTo > i
        ? `run ${runId} has its events out of order at position ${i + 1} (event ${id} where event ${i + 1} belongs)`
        : `run ${runId} is missing event${id - previous > 2 ? 's' : ''} ${previous + 1}${id - previous > 2 ? `–${id - 1}` : ''} (deleted from the history?)`;
    const step = near(i);
    problems.push({ ...(step ? { step } : {}), text });
    break; // one hole or swap makes every later position wrong: the first one is the finding
  }
  return problems;
}

function checkShape(raw: unknown): AuditBundle {
  const bundle = raw as Partial<AuditBundle> | undefined;
  if (!bundle || typeof bundle !== 'object' || bundle.format !== BUNDLE_FORMAT)
    throw new AuditBundleError(`not a Countersign audit bundle (expected format "${BUNDLE_FORMAT}")`);
  if (
    !Array.isArray(bundle.workflows) ||
    !Array.isArray(bundle.approvals) ||
    !Array.isArray(bundle.deviceRecords)
  )
    throw new AuditBundleError('the bundle lacks its workflows, approvals or device records');
  if (!bundle.manifest || !Array.isArray(bundle.manifest.workflows))
    throw new AuditBundleError('the bundle lacks its manifest');
  return bundle as AuditBundle;
}

function runsOf(workflow: BundledWorkflow): RunHistory[] {
  return workflow.runs.map((run) => ({
    runId: run.runId,
    events: historyFromJSON(run.history).events ?? [],
  }));
}

/**
 * A device, or a standing approval (or the device that signed it), revoked before the step ran
 * authorised nothing, even if the plan had not heard of it yet: the bundle's final device records
 * say when.
 */
function revokedBeforeRun(approvals: TimelineApproval[], registry: DeviceRegistry, ranAt: string): string[] {
  const ranMs = Date.parse(ranAt);
  const found: string[] = [];
  for (const approval of approvals) {
    if (approval.decision !== 'approve') continue;
    const device = registry.get(approval.keyId);
    if (device?.revoked && Date.parse(device.revoked.at) <= ranMs) {
      found.push(
        `the approval by "${device.name}" counts for nothing: the device was revoked at ${device.revoked.at}, before the step ran at ${ranAt}`,
      );
      continue;
    }
    if (!approval.grant) continue;
    const grant = registry.grant(approval.grant.grantId);
    const issuer = grant && registry.get(grant.issuedBy);
    const revoked = [grant?.revoked, issuer?.revoked].find((r) => r && Date.parse(r.at) <= ranMs);
    if (revoked)
      found.push(
        `standing approval "${approval.grant.name}" (${approval.grant.grantId}) ${revoked === grant?.revoked ? 'was revoked' : 'was signed by a device revoked'} at ${revoked.at}, before the step ran at ${ranAt}`,
      );
  }
  return found;
}

/**
 * The verifier's own chain from its pinned root: the bundle's records must be where that chain
 * starts, and hold every executor key the chain introduced before the plan started. A record taken
 * out of every copy in the bundle (to make what ran look unsigned) is found this way only.
 */
function heldChainProblems(bundled: Envelope[], held: readonly Envelope[], planStartedAt?: string): string[] {
  const problems: string[] = [];
  const forked = bundled.findIndex((r, i) => i < held.length && sigOf(r) !== sigOf(held[i]));
  if (forked >= 0)
    problems.push(
      `device record #${forked + 1} in the bundle is not the one this verifier holds from its root: records were taken out or replaced`,
    );
  const startedMs = planStartedAt ? Date.parse(planStartedAt) : Number.NaN;
  for (const envelope of held.slice(bundled.length)) {
    const record = decodeDeviceRecord(Buffer.from(envelope.payload, 'base64'));
    if (typeof record === 'string' || record.type !== 'introduce' || record.role !== 'executor') continue;
    if (!(Date.parse(record.at) <= startedMs)) continue;
    problems.push(
      `the bundle's device records leave out executor "${record.name}", introduced at ${record.at} before the plan started (this verifier holds it): a record was taken out, so what ran would look unsigned`,
    );
  }
  return problems;
}

export function verifyBundle(
  raw: unknown,
  options: {
    rootKeyId?: string | undefined;
    /** The verifier's own chain from its pinned root (the CLI's), when it has one. */
    heldRecords?: readonly Envelope[] | undefined;
  } = {},
): BundleVerdict {
  const bundle = checkShape(raw);
  const root = options.rootKeyId
    ? { keyId: options.rootKeyId, source: 'given' as const }
    : { keyId: bundle.manifest.rootKeyId, source: 'bundle' as const };
  const problems: string[] = [];
  if (root.source === 'bundle')
    problems.push(
      'no root device was given to verify against: a bundle names its own root, and a forger names theirs (pass --root KEYID, the root you trust)',
    );
  const bundled = new Set(bundle.workflows.map((w) => w.workflowId));
  const listed = new Set(bundle.manifest.workflows.map((w) => w.workflowId));
  if (bundle.workflows[0]?.workflowId !== bundle.manifest.planWorkflowId)
    problems.push(`the bundle does not begin with the plan it names (${bundle.manifest.planWorkflowId})`);
  for (const id of listed)
    if (!bundled.has(id)) problems.push(`the manifest lists ${id}, and the bundle lacks its history`);
  for (const id of bundled)
    if (!listed.has(id)) problems.push(`the bundle holds ${id}, which its manifest does not list`);
  const steps: StepVerdict[] = [];
  let chainProblem: string | undefined;
  let finalRegistry: DeviceRegistry | undefined;
  try {
    finalRegistry = DeviceRegistry.fromRecords(bundle.deviceRecords, root.keyId);
  } catch (error) {
    chainProblem = `the bundle's device records do not chain to the root ${root.keyId?.slice(0, 12) ?? '?'}…: ${(error as Error).message}`;
  }
  const historyEnvelopes: Envelope[] = [];
  const warnings: string[] = [];
  const proposers: ProposerVerdict[] = [];

  for (const workflow of bundle.workflows) {
    const entry = bundle.manifest.workflows.find((w) => w.workflowId === workflow.workflowId);
    const workflowProblems: string[] = [];
    if (entry && entry.sha256 !== workflowDigest(workflow))
      workflowProblems.push(`the history of ${workflow.workflowId} does not match the manifest's hash`);
    let runs: RunHistory[];
    try {
      runs = runsOf(workflow);
    } catch (error) {
      problems.push(`the history of ${workflow.workflowId} cannot be read: ${(error as Error).message}`);
      continue;
    }
    const structural = runs.flatMap((run) => structuralProblems(run.runId, run.events));
    const { timeline, deviceRecords, envelopes, children } = timelineFromRuns(workflow.workflowId, runs, {
      pinnedRootKeyId: root.keyId,
    });
    for (const child of children)
      if (!bundled.has(child))
        problems.push(
          `the history of ${workflow.workflowId} starts the sub-plan ${child}, and the bundle lacks it`,
        );
    historyEnvelopes.push(...envelopes);
    const recordMismatch = deviceRecords.findIndex((r, i) => sigOf(r) !== sigOf(bundle.deviceRecords[i]));
    if (recordMismatch >= 0)
      workflowProblems.push(
        `device record #${recordMismatch + 1} in the bundle is not the one the history of ${workflow.workflowId} holds`,
      );
    for (const problem of structural.filter((p) => !p.step)) workflowProblems.push(problem.text);
    for (const finding of timeline.findings.filter((f) => !f.step))
      workflowProblems.push(`${workflow.workflowId}: ${finding.text}`);
    let held: DeviceRegistry | undefined;
    try {
      held = DeviceRegistry.fromRecords(deviceRecords, root.keyId);
    } catch {
      held = undefined; // the approvals' verdicts say why
    }
    if (options.heldRecords?.length && workflow === bundle.workflows[0])
      problems.push(...heldChainProblems(bundle.deviceRecords, options.heldRecords, timeline.entries[0]?.at));
    const ending = endingOf(workflow.workflowId, runs, timeline, held);
    problems.push(...ending.problems);
    warnings.push(...ending.warnings);
    const proposer = proposerOf(workflow.workflowId, runs, root.keyId, finalRegistry);
    proposers.push(proposer);
    if (proposer.problem)
      problems.push(`${workflow.workflowId}: the proposer does not verify: ${proposer.problem}`);

    for (const step of timeline.steps) {
      const entries = timeline.entries.filter((e) => e.step === step.path);
      const reasons = [
        ...workflowProblems,
        ...structural.filter((p) => p.step === step.path).map((p) => p.text),
        ...timeline.findings.filter((f) => f.step === step.path).map((f) => f.text),
        ...entries
          .filter((e) => e.kind === 'approval_refused_at_audit')
          .map((e) => `an approval does not verify (${e.approval?.problem ?? e.text})`),
        ...entries
          .filter((e) => e.kind === 'step_started' && e.text.includes(' — '))
          .map((e) => e.text.slice(e.text.indexOf(' — ') + 3)),
      ];
      const approvals = entries.filter((e) => e.approval);
      if (chainProblem && approvals.length) reasons.push(chainProblem);
      const started = entries.find((e) => e.kind === 'step_started');
      const ran = step.attempts > 0 || started !== undefined;
      if (started && finalRegistry)
        reasons.push(
          ...revokedBeforeRun(
            approvals.map((e) => e.approval!),
            finalRegistry,
            started.at,
          ),
        );
      const deciders = approvals
        .filter((e) => e.approval!.verified)
        .map((e) =>
          e.approval!.grant
            ? `standing approval "${e.approval!.grant.name}" (${e.approval!.grant.grantId}: ${e.approval!.grant.text}; signed by "${e.approval!.grant.issuedBy}")`
            : `${e.approval!.decision === 'deny' ? 'denied' : 'approved'} by "${e.approval!.device}"`,
        );
      if (reasons.length || (ran && !step.verified))
        steps.push({
          workflowId: workflow.workflowId,
          path: step.path,
          verdict: 'failed',
          text: reasons.join('; ') || 'its approvals do not meet its policy',
          reasons: reasons.length ? reasons : ['its approvals do not meet its policy'],
        });
      else
        steps.push({
          workflowId: workflow.workflowId,
          path: step.path,
          verdict: ran ? 'ok' : 'not_run',
          text: ran
            ? `ran as approved: ${deciders.join(', ')}`
            : `did not run${deciders.length ? ` (${deciders.join(', ')})` : ''}`,
          reasons: [],
        });
    }
  }

  const copyMismatch = Math.max(bundle.approvals.length, historyEnvelopes.length);
  for (let i = 0; i < copyMismatch; i++) {
    const copy = bundle.approvals[i];
    const held = historyEnvelopes[i];
    if (copy && held && sigOf(copy) === sigOf(held) && copy.payload === held.payload) continue;
    const path = stepOfEnvelope(held) ?? stepOfEnvelope(copy);
    const verdict = steps.find((s) => s.path === path);
    const text = `approval #${i + 1} in the bundle's list differs from the one in the history`;
    if (verdict) {
      verdict.verdict = 'failed';
      verdict.reasons.push(text);
      verdict.text = verdict.reasons.join('; ');
    } else problems.push(text);
    break;
  }
  const proposer = planProposer(proposers, problems, warnings);
  return {
    ok: problems.length === 0 && steps.every((s) => s.verdict !== 'failed'),
    root,
    problems,
    warnings,
    proposer,
    steps,
  };
}

/**
 * The plan's proposer for the verdict. Sub-plans run under their plan's proposal: one that
 * carries another (or none, under a signed plan) was rewritten.
 */
function planProposer(
  proposers: ProposerVerdict[],
  problems: string[],
  warnings: string[],
): BundleVerdict['proposer'] {
  const [plan, ...subs] = proposers;
  if (!plan) return { signed: false, text: '(none)' };
  for (const sub of subs) {
    const same =
      sub.proposal === plan.proposal ||
      (sub.proposal !== undefined &&
        plan.proposal !== undefined &&
        sigOf(sub.proposal) === sigOf(plan.proposal) &&
        sub.proposal.payload === plan.proposal.payload);
    if (!same)
      problems.push(
        `${sub.workflowId}: the proposer does not verify: the sub-plan does not carry the proposal of ${plan.workflowId} (${sub.proposal ? 'another' : 'none'})`,
      );
    else if (sub.label !== plan.label)
      problems.push(
        `${sub.workflowId}: the proposer does not verify: the sub-plan says "${sub.label}" proposed it, and ${plan.workflowId} says "${plan.label}"`,
      );
  }
  if (plan.signed) return { signed: true, text: plan.signed.text };
  if (plan.unsigned)
    warnings.push(
      `proposer not signed: ${plan.label || '(no name)'} — ${plan.workflowId} was submitted without a signed proposal (from the web app, or an older client), so nothing vouches for who proposed it`,
    );
  return { signed: false, text: plan.label || '(no name)' };
}
