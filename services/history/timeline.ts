/**
 * A plan's timeline, rebuilt from its raw Temporal history (every run of its continue-as-new
 * chain) rather than from the workflow's own query. Every approval is verified again here,
 * with the same code the workflow and the executor use, so the timeline is an independent
 * audit: a history that says a step ran without a valid approval shows it with ✗.
 */
import { WorkflowNotFoundError, isGrpcServiceError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto, { type temporal } from '@temporalio/proto';
import {
  ApprovalRefused,
  peekApprovalPayload,
  verifyApproval,
  type ExpectedStep,
} from '../../core/approval/approval.js';
import {
  attestationSha256,
  expectsAttestations,
  openClose,
  resultProblem,
} from '../../core/approval/attestation.js';
import { authorizeStep } from '../../core/approval/authorize.js';
import type { Envelope } from '../../core/approval/dsse.js';
import { verifyProposal, type VerifiedProposal } from '../../core/approval/proposal.js';
import type { GateNoticeResult, StandingGrantAnswer } from '../../activities/control.js';
import { grantText } from '../../core/grants/grant.js';
import { DeviceRecordError, DeviceRegistry } from '../../core/devices/registry.js';
import { FAILURE_TYPES, SEARCH_ATTRIBUTES } from '../../core/names.js';
import { stepDigest } from '../../core/plan/digest.js';
import { stepSummary } from '../../core/plan/summary.js';
import type { PlanResult, StepResult } from '../../core/plan/state.js';
import type { McpPin } from '../../core/mcp/catalog.js';
import type { PlanSpec, StepNode } from '../../core/plan/types.js';
import { validatePlan } from '../../core/plan/validate.js';
import { planSteps } from '../../core/plan/walk.js';
import {
  approveUpdate,
  trustRecordsSignal,
  type ApprovalSubmission,
  type PlanWorkflowInput,
} from '../../workflows/messages.js';
import { UserFacingError } from '../errors.js';
import { toWorkflowId } from '../plans.js';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payloads = temporal.api.common.v1.IPayloads;
type Failure = temporal.api.failure.v1.IFailure;
import type { PlanTimeline, TimelineApproval, TimelineEntry } from './types.js';

export async function planTimeline(
  client: Client,
  planRef: string,
  options: { pinnedRootKeyId?: string } = {},
): Promise<PlanTimeline> {
  const workflowId = toWorkflowId(planRef);
  const runs = await fetchChain(client, workflowId, planRef);
  return timelineFromRuns(workflowId, runs, options).timeline;
}

/**
 * The timeline from histories already in hand (an audit bundle), with what it trusted: the
 * device records as they stood at the end, and every approval envelope found, in history order.
 */
export function timelineFromRuns(
  workflowId: string,
  runs: RunHistory[],
  options: { pinnedRootKeyId?: string | undefined } = {},
): { timeline: PlanTimeline; deviceRecords: Envelope[]; envelopes: Envelope[]; children: string[] } {
  const builder = new TimelineBuilder(workflowId, options.pinnedRootKeyId);
  for (const run of runs) builder.run(run.runId, run.events);
  return {
    timeline: builder.finish(),
    deviceRecords: builder.deviceRecords(),
    envelopes: builder.envelopes,
    children: builder.childWorkflowIds(),
  };
}

// ---- fetching the continue-as-new chain ----

export interface RunHistory {
  runId: string;
  events: HistoryEvent[];
}

/**
 * Walks back from the latest run through `continuedExecutionRunId`. This needs no visibility
 * query (eventually consistent, and it would mix in older chains that reused the workflow id).
 */
export async function fetchChain(client: Client, workflowId: string, planRef: string): Promise<RunHistory[]> {
  const chain: { runId?: string; events: HistoryEvent[] }[] = [];
  let runId: string | undefined;
  for (;;) {
    let events: HistoryEvent[];
    try {
      events = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    } catch (error) {
      if (error instanceof WorkflowNotFoundError || (isGrpcServiceError(error) && error.code === 5)) {
        throw new UserFacingError(
          `history ${planRef}: no such plan (${workflowId})${runId ? `; run ${runId} of its chain is gone (past retention?)` : ''}`,
          'not_found',
        );
      }
      throw error;
    }
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    if (!started)
      throw new UserFacingError(
        `history ${planRef}: the history of ${workflowId} does not begin with a start event`,
        'bad_history',
      );
    chain.unshift({ runId, events });
    if (!started.continuedExecutionRunId) {
      // The latest run was fetched without its id: the run before names it, or it is the first run.
      const latest = chain[chain.length - 1]!;
      const previous = chain[chain.length - 2];
      const named =
        previous?.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      latest.runId ??= previous ? named || '?' : started.firstExecutionRunId || '?';
      return chain.map((run) => ({ runId: run.runId!, events: run.events }));
    }
    runId = started.continuedExecutionRunId;
  }
}

// ---- folding events into a timeline ----

interface StepState {
  node: StepNode;
  digest: string;
  mcpPin?: McpPin | undefined;
  /** The envelopes that verified, in history order: what the one authorisation rule weighs. */
  envelopes: Envelope[];
  /** Hashes of the result attestations the history holds for this step (one per attempt that ended). */
  attested: string[];
  attempts: number;
  /** The exit code of the last result the history holds for this step. */
  exitCode?: number | null | undefined;
  decisions: TimelineApproval[];
  /** Verified approvals counted when the step was scheduled on the executor. */
  scheduledAuthorised?: boolean;
  ranAsPlanned: boolean;
}

interface PendingActivity {
  type: string;
  stepPath?: string;
  input: unknown;
  attempt: number;
  isStepRun: boolean;
}

const RESET_WORKFLOW =
  proto.temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW;

/** `signAutoApproval`: plans recorded before standing approvals had the policy key sign by their own rules. */
const CONTROL_ACTIVITIES = new Set([
  'signAutoApproval',
  'applyStandingGrant',
  'gateReached',
  'attestPlanClose',
]);

interface GateNoticeInput {
  kind: 'gate' | 'reminder' | 'escalation' | 'decided';
  attempt: number;
  stepPath: string;
  deadline: string;
  escalateTo: string[];
}

/** A gate notice's input, as recorded now (`gate`, `audience`) or before notices had channels (flat). */
function gateNoticeOf(input: unknown): GateNoticeInput | undefined {
  const raw = input as
    | {
        kind?: string;
        attempt?: number;
        stepPath?: string;
        deadline?: string;
        gate?: { stepPath: string; deadline: string };
        audience?: { escalateTo?: string[] };
      }
    | undefined;
  if (!raw) return undefined;
  const attempt = raw.attempt ?? 0;
  if (raw.gate)
    return {
      kind: raw.kind as GateNoticeInput['kind'],
      attempt,
      stepPath: raw.gate.stepPath,
      deadline: raw.gate.deadline,
      escalateTo: raw.audience?.escalateTo ?? [],
    };
  if (!raw.stepPath) return undefined;
  return {
    kind: attempt === 0 ? 'gate' : 'reminder',
    attempt,
    stepPath: raw.stepPath,
    deadline: raw.deadline ?? '?',
    escalateTo: [],
  };
}

class TimelineBuilder {
  private readonly entries: (TimelineEntry & { ms: number; order: number })[] = [];
  private nameOf(id: string): string {
    if (!(this.registry instanceof DeviceRegistry)) return id;
    return this.registry.get(id)?.name ?? this.registry.agent(id)?.name ?? id;
  }
  private readonly steps = new Map<string, StepState>();
  private readonly nonces = new Set<string>();
  private readonly activities = new Map<string, PendingActivity>();
  private readonly children = new Map<string, { workflowId: string; path: string }>();
  private readonly admitted = new Map<string, temporal.api.update.v1.IRequest>();
  private readonly runs: string[] = [];
  private registry: DeviceRegistry | DeviceRecordError = new DeviceRegistry();
  /** Every approval envelope in the history (human and policy), in history order. */
  readonly envelopes: Envelope[] = [];
  private trustRecords: Envelope[] = [];
  private firstRunId = '';
  private workspaceId = '';
  private egress = false;
  private planName = '';
  private proposer = '';
  private proposal?: Envelope | undefined;
  /** The executor's signed close, when the history holds it. */
  private close?: Envelope | undefined;
  /** What the plan's closing event says of its end and its steps'. */
  private result?: PlanResult | undefined;
  /** What does not verify beyond single approvals: results, the close, resets. */
  private readonly findings: { step?: string; text: string }[] = [];
  private raw: unknown;
  private status = 'running';

  constructor(
    private readonly workflowId: string,
    private readonly pinnedRootKeyId: string | undefined,
  ) {}

  run(runId: string, events: HistoryEvent[]): void {
    this.runs.push(runId);
    for (const event of events) this.event(runId, event);
  }

  /** The device records the history vouches for at its end (the input's, as extended by submissions). */
  deviceRecords(): Envelope[] {
    return this.registry instanceof DeviceRegistry ? [...this.registry.records] : this.trustRecords;
  }

  childWorkflowIds(): string[] {
    return [...new Set([...this.children.values()].map((c) => c.workflowId))];
  }

  finish(): PlanTimeline {
    this.checkClose();
    const entries = this.entries
      .sort((a, b) => a.ms - b.ms || a.order - b.order)
      .map(({ ms: _ms, order: _order, ...entry }) => entry);
    const steps = [...this.steps.values()].map((s) => ({
      path: s.node.path,
      digest: s.digest,
      summary: stepSummary(s.node),
      attempts: s.attempts,
      approvals: s.decisions.length,
      verified: s.decisions.every((d) => d.verified) && s.ranAsPlanned && s.scheduledAuthorised !== false,
    }));
    return {
      workflowId: this.workflowId,
      planName: this.planName,
      proposer: this.proposer,
      status: this.status,
      runs: this.runs,
      entries,
      steps,
      findings: this.findings,
    };
  }

  /**
   * A closed plan whose results are signed must end with the executor's signed close, naming the
   * result of every step that ran: a history cut short, or a step left out, shows here.
   */
  private checkClose(): void {
    if (!(this.registry instanceof DeviceRegistry) || !expectsAttestations(this.registry)) return;
    const open = this.status === 'running' || this.status === 'awaiting_approval';
    if (!this.close) {
      if (!open)
        this.findings.push({
          text:
            this.status === 'terminated'
              ? 'the plan was terminated through Temporal: it has no close signed by the executor'
              : `the plan ended ${this.status} without a close signed by the executor (is the history cut short?)`,
        });
      return;
    }
    const close = openClose(this.close, this.registry);
    if (typeof close === 'string') {
      this.findings.push({ text: `the plan's close does not verify: ${close}` });
      return;
    }
    if (close.claims.workflowId !== this.workflowId || close.claims.runId !== this.firstRunId)
      this.findings.push({ text: `the close is signed for ${close.claims.workflowId}, not this plan` });
    // The ending the history shows must be the one signed (terminated after the close says so itself).
    if (!open && this.status !== 'terminated' && close.claims.status !== this.status)
      this.findings.push({
        text: `the plan's ending does not verify: the history says it ended ${this.status}, and the close executor "${close.signer}" signed says ${close.claims.status}`,
      });
    for (const ended of Array.isArray(this.result?.steps) ? this.result.steps : []) {
      if (typeof ended?.path !== 'string') continue;
      const named = close.claims.steps[ended.path];
      const state = this.steps.get(ended.path);
      if (named && ended.status !== named.status)
        this.findings.push({
          step: ended.path,
          text: `its ending does not verify: the plan's end says it ${ended.status}, and the signed close says ${named.status}`,
        });
      if (state && ended.exitCode !== undefined && state.attested.length && ended.exitCode !== state.exitCode)
        this.findings.push({
          step: ended.path,
          text: `its exit code does not verify: the plan's end says ${String(ended.exitCode)}, and its result in the history says ${String(state.exitCode)}`,
        });
    }
    for (const [path, state] of this.steps) {
      const named = close.claims.steps[path];
      if (!named) {
        this.findings.push({ step: path, text: 'the signed close does not name this step' });
        continue;
      }
      if (named.result && !state.attested.includes(named.result))
        this.findings.push({
          step: path,
          text: `the executor signed a result for this step (${named.status}) that the history does not hold: removed or rewritten`,
        });
      if (!named.result && state.attested.length)
        this.findings.push({
          step: path,
          text: 'the history holds a result of this step that the signed close does not name',
        });
    }
  }

  private add(
    runId: string,
    event: HistoryEvent,
    entry: Omit<TimelineEntry, 'at' | 'runId'>,
    ms = eventMs(event),
  ): void {
    this.entries.push({ at: new Date(ms).toISOString(), runId, ...entry, ms, order: this.entries.length });
  }

  private event(runId: string, event: HistoryEvent): void {
    const id = `${runId}/${String(event.eventId)}`;
    const ref = (scheduled: unknown) => `${runId}/${String(scheduled)}`;

    if (event.workflowExecutionStartedEventAttributes)
      return this.started(runId, event, event.workflowExecutionStartedEventAttributes);
    if (event.upsertWorkflowSearchAttributesEventAttributes) {
      const field =
        event.upsertWorkflowSearchAttributesEventAttributes.searchAttributes?.indexedFields?.[
          SEARCH_ATTRIBUTES.status.name
        ];
      const value = field ? decodeOne<unknown>(field) : undefined;
      const status = Array.isArray(value) ? value[0] : value;
      if (typeof status === 'string') this.status = status;
      return;
    }
    const reset = event.workflowTaskFailedEventAttributes;
    if (reset?.cause === RESET_WORKFLOW) {
      this.findings.push({
        text: `the history was reset through Temporal (from run ${reset.baseRunId || '?'})`,
      });
      this.add(runId, event, {
        kind: 'plan_reset',
        text: `the plan was reset through Temporal from run ${reset.baseRunId || '?'} to this point (new run ${reset.newRunId || runId}): whoever did it talked to Temporal directly; steps of a plan that had ended run nothing more on the approvals given before`,
      });
      return;
    }
    const signaled = event.workflowExecutionSignaledEventAttributes;
    if (signaled) {
      if (signaled.signalName === trustRecordsSignal.name)
        this.adoptRecords(decode<{ records: Envelope[] }>(signaled.input)?.records ?? []);
      return;
    }
    if (event.workflowExecutionUpdateAdmittedEventAttributes?.request) {
      this.admitted.set(id, event.workflowExecutionUpdateAdmittedEventAttributes.request);
      return;
    }
    if (event.workflowExecutionUpdateAcceptedEventAttributes) {
      const accepted = event.workflowExecutionUpdateAcceptedEventAttributes;
      // The request is inline, unless an earlier UpdateAdmitted event already holds it.
      const request =
        accepted.acceptedRequest ?? this.admitted.get(ref(accepted.acceptedRequestSequencingEventId));
      if (request?.input?.name !== approveUpdate.name) return;
      const submission = decode<ApprovalSubmission>(request.input.args);
      if (submission) this.approval(runId, event, submission.envelope, submission.deviceRecords ?? [], false);
      return;
    }

    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const type = scheduled.activityType?.name ?? '?';
      const input = decode<Record<string, unknown>>(scheduled.input);
      const notice = type === 'gateReached' ? gateNoticeOf(input) : undefined;
      const stepPath =
        notice?.stepPath ??
        (input?.stepPath as string | undefined) ??
        (input?.step as { path?: string } | undefined)?.path;
      const isStepRun = !CONTROL_ACTIVITIES.has(type) && stepPath !== undefined;
      this.activities.set(id, { type, stepPath, input, attempt: 1, isStepRun });
      if (notice && notice.kind !== 'decided') {
        this.add(runId, event, {
          kind: notice.kind === 'escalation' ? 'gate_escalated' : 'gate_reached',
          step: notice.stepPath,
          text:
            notice.kind === 'escalation'
              ? `escalated: ${notice.escalateTo.join(', ') || 'further approvers'} told too (deadline ${notice.deadline})`
              : notice.attempt === 0
                ? `awaiting approval (deadline ${notice.deadline})`
                : `reminder #${notice.attempt}: still awaiting approval (deadline ${notice.deadline})`,
        });
      } else if (isStepRun && stepPath) this.stepScheduled(runId, event, stepPath, input);
      return;
    }
    const started = event.activityTaskStartedEventAttributes;
    if (started) {
      const activity = this.activities.get(ref(started.scheduledEventId));
      if (!activity) return;
      activity.attempt = started.attempt ?? 1;
      if (activity.isStepRun && activity.attempt > 1) {
        const last = started.lastFailure ? `; last failure: ${failureText(started.lastFailure)}` : '';
        this.add(runId, event, {
          kind: 'step_retry',
          step: activity.stepPath,
          text: `attempt ${activity.attempt} started after ${activity.attempt - 1} failed or timed-out attempt${activity.attempt > 2 ? 's' : ''}${last}`,
        });
      }
      if (activity.isStepRun) this.countAttempt(activity.stepPath, activity.attempt);
      return;
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) {
      const activity = this.activities.get(ref(completed.scheduledEventId));
      if (!activity) return;
      if (activity.type === 'pinMcpCalls') {
        this.toolsPinned(
          runId,
          event,
          decode<{ pins: Record<string, McpPin> }>(completed.result)?.pins ?? {},
        );
      } else if (activity.type === 'signAutoApproval') {
        const envelope = decode<Envelope>(completed.result);
        if (envelope)
          this.approval(runId, event, envelope, [], true, (activity.input as { stepPath: string }).stepPath);
      } else if (activity.type === 'attestPlanClose') {
        this.close = decode<Envelope>(completed.result);
      } else if (activity.type === 'applyStandingGrant') {
        const answer = decode<StandingGrantAnswer>(completed.result);
        const stepPath = (activity.input as { stepPath: string }).stepPath;
        if (answer?.applied) this.approval(runId, event, answer.envelope, answer.records, true, stepPath);
        else if (answer) {
          this.adoptRecords(answer.records ?? []);
          this.add(runId, event, {
            kind: 'grant_not_applied',
            step: stepPath,
            text: `asked for a standing approval: ${answer.reason}; a person decides`,
          });
        }
      } else if (activity.type === 'gateReached') {
        const outcomes = decode<Partial<GateNoticeResult>>(completed.result)?.outcomes ?? [];
        if (outcomes.length > 0)
          this.add(runId, event, {
            kind: 'notice',
            step: activity.stepPath,
            text: `${gateNoticeOf(activity.input)?.kind ?? 'gate'} notice: ${outcomes
              .map(
                (o) =>
                  `${o.target} ${o.status.replace('_', ' ')}${o.status === 'sent' ? '' : ` (${o.detail})`}`,
              )
              .join('; ')}`,
          });
      } else if (activity.isStepRun) {
        const result = decode<StepResult>(completed.result);
        this.stepFinished(runId, event, activity, result);
      }
      return;
    }
    const failed = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    if (failed) {
      const activity = this.activities.get(ref(failed.scheduledEventId));
      if (activity?.type === 'gateReached') {
        this.add(runId, event, {
          kind: 'notice_failed',
          step: activity.stepPath,
          text: `notices given up (approvals still work in the app and the CLI): ${failureText(failed.failure)}`,
        });
        return;
      }
      if (!activity?.isStepRun) return;
      const timedOut = Boolean(event.activityTaskTimedOutEventAttributes);
      this.add(runId, event, {
        kind: 'step_failed',
        step: activity.stepPath,
        text: `${timedOut ? 'timed out' : 'failed'} on attempt ${activity.attempt}: ${failureText(failed.failure)}`,
      });
      return;
    }
    const cancelled = event.activityTaskCanceledEventAttributes;
    if (cancelled) {
      const activity = this.activities.get(ref(cancelled.scheduledEventId));
      if (activity?.isStepRun)
        this.add(runId, event, {
          kind: 'step_cancelled',
          step: activity.stepPath,
          text: `cancelled on attempt ${activity.attempt}; the executor stopped its process`,
        });
      return;
    }
    this.childAndClose(runId, event, id, ref);
  }

  private childAndClose(
    runId: string,
    event: HistoryEvent,
    id: string,
    ref: (eventId: unknown) => string,
  ): void {
    const initiated = event.startChildWorkflowExecutionInitiatedEventAttributes;
    if (initiated) {
      const childId = initiated.workflowId ?? '?';
      const path = childId.startsWith(`${this.workflowId}.`)
        ? childId.slice(this.workflowId.length + 1)
        : childId;
      const input = decode<PlanWorkflowInput>(initiated.input);
      const name = (input?.plan as { name?: unknown } | undefined)?.name;
      this.children.set(id, { workflowId: childId, path });
      this.add(runId, event, {
        kind: 'sub_plan_started',
        step: path,
        text: `sub-plan ${typeof name === 'string' ? `"${name}" ` : ''}started as ${childId}`,
      });
      return;
    }
    const childClosed =
      (event.childWorkflowExecutionCompletedEventAttributes && {
        how: 'succeeded',
        attrs: event.childWorkflowExecutionCompletedEventAttributes,
        failure: undefined,
      }) ||
      (event.childWorkflowExecutionFailedEventAttributes && {
        how: 'failed',
        attrs: event.childWorkflowExecutionFailedEventAttributes,
        failure: event.childWorkflowExecutionFailedEventAttributes.failure,
      }) ||
      (event.childWorkflowExecutionCanceledEventAttributes && {
        how: 'was cancelled',
        attrs: event.childWorkflowExecutionCanceledEventAttributes,
        failure: undefined,
      }) ||
      (event.childWorkflowExecutionTimedOutEventAttributes && {
        how: 'timed out',
        attrs: event.childWorkflowExecutionTimedOutEventAttributes,
        failure: undefined,
      }) ||
      (event.childWorkflowExecutionTerminatedEventAttributes && {
        how: 'was terminated',
        attrs: event.childWorkflowExecutionTerminatedEventAttributes,
        failure: undefined,
      }) ||
      (event.startChildWorkflowExecutionFailedEventAttributes && {
        how: 'could not start',
        attrs: event.startChildWorkflowExecutionFailedEventAttributes,
        failure: undefined,
      });
    if (childClosed) {
      const child = this.children.get(ref(childClosed.attrs.initiatedEventId));
      const detail = childClosed.failure ? `: ${failureText(childClosed.failure)}` : '';
      this.add(runId, event, {
        kind: 'sub_plan_finished',
        step: child?.path,
        text: `sub-plan ${child?.workflowId ?? ''} ${childClosed.how}${detail}`,
      });
      return;
    }

    const canAttrs = event.workflowExecutionContinuedAsNewEventAttributes;
    if (canAttrs) {
      this.add(runId, event, {
        kind: 'continued_as_new',
        text: `continued as new in run ${canAttrs.newExecutionRunId} after ${String(event.eventId)} events`,
      });
      return;
    }
    const done = event.workflowExecutionCompletedEventAttributes;
    if (done) {
      const result = decode<PlanResult>(done.result);
      this.result = result;
      this.status = result?.status ?? 'succeeded';
      this.add(runId, event, { kind: 'plan_finished', text: `plan ${this.status}` });
      return;
    }
    const planFailed = event.workflowExecutionFailedEventAttributes;
    if (planFailed) {
      const result = decode<PlanResult>(planFailed.failure?.applicationFailureInfo?.details);
      this.result = result;
      this.status = result?.status ?? 'failed';
      // A plan's own failure already reads `plan "name" failed: <steps and reasons>`.
      const own =
        planFailed.failure?.applicationFailureInfo?.type === FAILURE_TYPES.planFailed &&
        planFailed.failure.message;
      this.add(runId, event, {
        kind: 'plan_finished',
        text: own || `plan ${this.status}: ${failureText(planFailed.failure)}`,
      });
      return;
    }
    const closed =
      (event.workflowExecutionCanceledEventAttributes && 'cancelled') ||
      (event.workflowExecutionTerminatedEventAttributes && 'terminated') ||
      (event.workflowExecutionTimedOutEventAttributes && 'timed_out');
    if (closed) {
      this.status = closed;
      const reason = event.workflowExecutionTerminatedEventAttributes?.reason;
      this.add(runId, event, {
        kind: 'plan_finished',
        text: `plan ${closed.replace('_', ' ')}${reason ? `: ${reason}` : ''}`,
      });
    }
  }

  private started(
    runId: string,
    event: HistoryEvent,
    attrs: temporal.api.history.v1.IWorkflowExecutionStartedEventAttributes,
  ): void {
    if (this.runs.length > 1) return; // a continued run: same plan, carried state we deliberately do not trust
    this.firstRunId = attrs.firstExecutionRunId || runId;
    const input = decode<PlanWorkflowInput>(attrs.input);
    this.workspaceId = input?.workspaceId ?? '';
    this.proposer = input?.proposer ?? '';
    this.proposal = input?.proposal;
    this.raw = input?.plan;
    this.trustRecords = input?.trustRecords ?? [];
    this.registry = this.buildRegistry(this.trustRecords);
    let spec: PlanSpec | undefined;
    let invalid = '';
    try {
      // Histories keep plans of every version: a plan's own rules are read (and never trusted) here.
      spec = validatePlan(input?.plan, { planRules: 'read' });
    } catch (error) {
      invalid = ` (the plan is invalid: ${(error as Error).message.split('\n').slice(1).join('; ').trim()})`;
    }
    const raw = input?.plan as { name?: unknown } | undefined;
    this.planName = spec?.name ?? (typeof raw?.name === 'string' ? raw.name : '');
    this.egress = spec?.egress ?? false;
    for (const node of spec ? planSteps(spec) : []) {
      this.steps.set(node.path, {
        node,
        // An MCP step's digest needs its catalog pin: set when the pins appear in the history.
        digest: node.kind === 'mcp' ? '' : stepDigest(node, this.workspaceId, this.egress),
        attempts: 0,
        decisions: [],
        envelopes: [],
        attested: [],
        ranAsPlanned: true,
      });
    }
    const parent = attrs.parentWorkflowExecution?.workflowId
      ? `, a sub-plan of ${attrs.parentWorkflowExecution.workflowId}`
      : '';
    const signed = this.verifiedProposal();
    const proposedBy =
      typeof signed === 'object'
        ? `${this.proposer || '?'} (signed proposal by ${'agent' in signed.proposer ? `agent ${signed.proposer.agent}` : `device ${signed.proposer.device.slice(0, 12)}…`})`
        : `${this.proposer || '?'} (unsigned: ${signed})`;
    this.add(runId, event, {
      kind: 'plan_started',
      text: `plan "${this.planName}" proposed by ${proposedBy}: ${this.steps.size} step${this.steps.size === 1 ? '' : 's'}, workspace ${this.workspaceId}${parent}${invalid}`,
    });
  }

  /** Who proposed the plan, as the records known now verify it; a string says why nobody verifiably did. */
  private verifiedProposal(): VerifiedProposal | string {
    if (!this.proposal) return 'no signed proposal';
    if (this.registry instanceof DeviceRecordError) return 'the device records do not verify';
    try {
      return verifyProposal(this.proposal, {
        workflowId: this.workflowId,
        registry: this.registry,
        raw: this.raw,
      });
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** What the verifiers know of a step here (the same as the workflow and the executor compute). */
  private expected(state: StepState): ExpectedStep {
    const proposal = this.verifiedProposal();
    const verified = typeof proposal === 'object' ? proposal : undefined;
    return {
      digest: state.digest,
      auto: state.node.approval.mode === 'auto',
      granted: {
        step: state.node,
        egress: this.egress,
        mcpPin: state.mcpPin,
        planName: verified?.planName ?? this.planName,
        proposer: verified?.proposer,
      },
    };
  }

  private buildRegistry(records: Envelope[]): DeviceRegistry | DeviceRecordError {
    try {
      return DeviceRegistry.fromRecords(records, this.pinnedRootKeyId);
    } catch (error) {
      if (error instanceof DeviceRecordError) return error;
      return new DeviceRecordError('malformed_record', (error as Error).message);
    }
  }

  /** As the workflow does: records are adopted when they extend the known chain and verify. */
  private adoptRecords(records: Envelope[]): void {
    if (this.registry instanceof DeviceRecordError || !Array.isArray(records)) return;
    try {
      this.registry = this.registry.extendedWith(records, this.pinnedRootKeyId) ?? this.registry;
    } catch {
      // A chain with a bad record is not adopted; the history keeps what it had.
    }
  }

  private approval(
    runId: string,
    event: HistoryEvent,
    envelope: Envelope,
    deviceRecords: Envelope[],
    viaPolicyActivity: boolean,
    requestedStep?: string,
  ): void {
    this.adoptRecords(deviceRecords);
    if (envelope) this.envelopes.push(envelope);
    const claimed = readPayload(envelope);
    const stepPath = claimed?.stepPath ?? requestedStep;
    let problem: string | undefined;
    let device =
      claimed?.keyId && this.registry instanceof DeviceRegistry
        ? this.registry.get(claimed.keyId)
        : undefined;
    if (this.registry instanceof DeviceRecordError) {
      problem = `[${this.registry.code}] device records do not chain to a trusted root: ${this.registry.message}`;
    } else {
      try {
        device = verifyApproval(envelope, {
          workflowId: this.workflowId,
          runId: this.firstRunId,
          nowMs: eventMs(event),
          registry: this.registry,
          nonceUsed: (nonce) => this.nonces.has(nonce),
          step: (path) => {
            const step = this.steps.get(path);
            return step && this.expected(step);
          },
        }).device;
        if (viaPolicyActivity && requestedStep !== undefined && claimed?.stepPath !== requestedStep) {
          problem = `[unknown_step] the auto-approval was requested for "${requestedStep}" but signs "${claimed?.stepPath}"`;
        }
      } catch (error) {
        problem =
          error instanceof ApprovalRefused
            ? `[${error.code}] ${error.message}`
            : `[malformed_envelope] ${(error as Error).message}`;
      }
    }
    if (claimed?.nonce) this.nonces.add(claimed.nonce);
    if (stepPath !== undefined && problem === undefined) this.steps.get(stepPath)?.envelopes.push(envelope);
    const grantId = claimed?.grantId;
    const grant =
      grantId && this.registry instanceof DeviceRegistry ? this.registry.grant(grantId) : undefined;
    const approval: TimelineApproval = {
      keyId: claimed?.keyId ?? envelope?.signatures?.[0]?.keyid ?? '',
      device: device?.name ?? '',
      role: device?.role ?? 'unknown',
      decision: claimed?.decision === 'deny' ? 'deny' : 'approve',
      reason: claimed?.reason ?? '',
      auto: viaPolicyActivity || device?.role === 'policy',
      verified: problem === undefined,
      ...(problem !== undefined && { problem }),
      ...(grant && this.registry instanceof DeviceRegistry
        ? {
            grant: {
              grantId: grant.grantId,
              name: grant.record.name,
              text: grantText(grant.record, (id) => this.nameOf(id)),
              issuedBy: this.nameOf(grant.issuedBy),
              issuedAt: grant.record.at,
              expiresAt: grant.record.expiresAt,
            },
          }
        : {}),
    };
    const step = stepPath !== undefined ? this.steps.get(stepPath) : undefined;
    step?.decisions.push(approval);
    const verb = approval.decision === 'deny' ? 'denied' : 'approved';
    const key = `key ${approval.keyId.slice(0, 12)}`;
    // An envelope that failed verification proves nothing about who signed it: say only what it claims.
    const who = !approval.verified
      ? `(unverified) with ${key}${approval.device ? `, a key registered to "${approval.device}"` : ''}${grantId ? `, naming standing approval ${grantId}` : ''}`
      : approval.grant
        ? `by standing approval "${approval.grant.name}" (${approval.grant.grantId}: ${approval.grant.text}; signed by "${approval.grant.issuedBy}" on ${approval.grant.issuedAt}), applied by the policy key`
        : approval.role === 'policy'
          ? `by the plan's own rule (before standing approvals: no person signed this), ${key}`
          : `by "${approval.device}" (${approval.role}), ${key}`;
    const text = `${verb} ${who}${approval.reason ? `: "${approval.reason}"` : ''}`;
    this.add(runId, event, {
      kind: approval.verified ? 'approval' : 'approval_refused_at_audit',
      step: stepPath,
      text,
      approval,
    });
  }

  /** The catalog's answer for the plan's MCP calls: each pin fixes its step's digest. */
  private toolsPinned(runId: string, event: HistoryEvent, pins: Record<string, McpPin>): void {
    for (const [path, pin] of Object.entries(pins)) {
      const state = this.steps.get(path);
      if (state?.node.kind !== 'mcp') continue;
      try {
        state.digest = stepDigest(state.node, this.workspaceId, this.egress, pin);
        state.mcpPin = pin;
      } catch {
        state.ranAsPlanned = false;
      }
      this.add(runId, event, {
        kind: 'tool_pinned',
        step: path,
        text: `${pin.server}/${pin.tool} (image ${pin.image.slice(0, 19)}…, tool ${pin.toolSha256.slice(0, 12)}…, workspace ${pin.workspace}, network ${pin.network}) says: "${pin.description}"`,
      });
    }
  }

  private countAttempt(path: string | undefined, attempt: number): void {
    const state = path !== undefined ? this.steps.get(path) : undefined;
    if (state) state.attempts = Math.max(state.attempts, attempt);
  }

  private stepScheduled(
    runId: string,
    event: HistoryEvent,
    stepPath: string,
    input: Record<string, unknown> | undefined,
  ): void {
    const state = this.steps.get(stepPath);
    const notes: string[] = [];
    // Show what the executor was actually sent; the plan's version appears only when they differ.
    const executed = input?.step as Partial<StepNode> | undefined;
    const described = (step: Partial<StepNode> | undefined) => {
      try {
        return step?.kind === 'shell' ? `\`${step.run}\`` : stepSummary(step as StepNode);
      } catch {
        return '(unreadable step)';
      }
    };
    if (!state) {
      notes.push('not a step of this plan');
    } else {
      let executedDigest: string | undefined;
      try {
        executedDigest = stepDigest(
          executed as StepNode,
          String(input?.workspaceId ?? ''),
          input?.egress === true,
          input?.mcpPin as McpPin | undefined,
        );
      } catch {
        executedDigest = undefined;
      }
      if (executedDigest !== state.digest || input?.digest !== state.digest) {
        state.ranAsPlanned = false;
        notes.push(`differs from the planned step ${described(state.node)} (digest mismatch)`);
      }
      const authority =
        this.registry instanceof DeviceRegistry
          ? authorizeStep({
              workflowId: this.workflowId,
              runId: this.firstRunId,
              step: state.node,
              expected: this.expected(state),
              approvals: state.envelopes,
              registry: this.registry,
              // An audit does not accept a plan's own rules: no person signed those.
              legacyPlanRules: false,
            })
          : undefined;
      const authorised = authority?.verdict === 'approved';
      state.scheduledAuthorised = (state.scheduledAuthorised ?? true) && authorised;
      if (!authorised)
        notes.push(
          `scheduled without approvals that authorise it (${authority?.summary ?? 'its device records do not verify'})`,
        );
    }
    this.add(runId, event, {
      kind: 'step_started',
      step: stepPath,
      text: `sent to the executor: ${described(executed)}${notes.length ? ` — ${notes.join('; ')}` : ''}`,
    });
  }

  private stepFinished(
    runId: string,
    event: HistoryEvent,
    activity: PendingActivity,
    result: StepResult | undefined,
  ): void {
    if (!result) {
      this.add(runId, event, {
        kind: 'step_finished',
        step: activity.stepPath,
        text: 'finished (result could not be decoded)',
      });
      return;
    }
    this.countAttempt(activity.stepPath, result.attempt ?? activity.attempt);
    const state = activity.stepPath !== undefined ? this.steps.get(activity.stepPath) : undefined;
    if (state) state.exitCode = result.exitCode;
    // What ran must be what an executor signed, once an executor key is in the records.
    const signedBy =
      state && this.registry instanceof DeviceRegistry && expectsAttestations(this.registry)
        ? resultProblem(
            result.attestation,
            {
              workflowId: this.workflowId,
              runId: this.firstRunId,
              stepPath: state.node.path,
              digest: state.digest,
            },
            result,
            this.registry,
          )
        : undefined;
    if (state && result.attestation) state.attested.push(attestationSha256(result.attestation));
    if (state && signedBy) {
      state.ranAsPlanned = false;
      this.findings.push({ step: state.node.path, text: `its recorded result does not verify: ${signedBy}` });
    }
    const ok = !signedBy && (result.mcp ? !result.mcp.isError : result.exitCode === 0);
    const how = result.mcp
      ? result.mcp.isError
        ? 'the tool reported an error'
        : 'the tool answered'
      : result.exitCode === null
        ? `killed by ${result.signal}`
        : `exit ${result.exitCode}`;
    const reattached = result.attachCount > 1 ? `, re-attached ${result.attachCount - 1}×` : '';
    this.add(runId, event, {
      kind: ok ? 'step_finished' : 'step_failed',
      step: activity.stepPath,
      text: `${how} after ${formatDuration(result.durationMs)} (${result.backend}, attempt ${result.attempt}${reattached})${signedBy ? ` — ✗ ${signedBy}` : result.attestation ? ', signed by the executor' : ''}`,
      result: {
        exitCode: result.exitCode,
        signal: result.signal,
        durationMs: result.durationMs,
        outputTail: result.outputTail,
        attempt: result.attempt,
        attachCount: result.attachCount,
        backend: result.backend,
      },
    });
  }
}

// ---- decoding helpers ----

function eventMs(event: HistoryEvent): number {
  const t = event.eventTime;
  if (!t) return 0;
  return Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

function decodeOne<T>(payload: temporal.api.common.v1.IPayload): T | undefined {
  try {
    return defaultPayloadConverter.fromPayload<T>(payload);
  } catch {
    return undefined;
  }
}

function decode<T>(payloads: Payloads | null | undefined, index = 0): T | undefined {
  const payload = payloads?.payloads?.[index];
  return payload ? decodeOne<T>(payload) : undefined;
}

/** What the envelope claims, read without trusting it (verification decides whether it holds). */
function readPayload(
  envelope: Envelope | undefined,
):
  | Partial<
      Record<
        'workflowId' | 'runId' | 'stepPath' | 'decision' | 'reason' | 'nonce' | 'keyId' | 'grantId',
        string
      >
    >
  | undefined {
  const payload = peekApprovalPayload(envelope);
  if (!payload) return undefined;
  const texts = Object.fromEntries(
    Object.entries(payload).filter(([, v]) => typeof v === 'string'),
  ) as Record<string, string>;
  const grantId = payload.grant?.id;
  return typeof grantId === 'string' ? { ...texts, grantId } : texts;
}

function failureText(failure: Failure | null | undefined): string {
  const parts: string[] = [];
  let current = failure;
  while (current && parts.length < 4) {
    const type = current.applicationFailureInfo?.type;
    if (current.message) parts.push(type ? `[${type}] ${current.message}` : current.message);
    current = current.cause;
  }
  return parts.filter((p, i) => parts.indexOf(p) === i).join(': ') || 'unknown failure';
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
