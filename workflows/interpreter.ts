/**
 * Walks a plan tree: sequences in order, parallel groups under a cancellation scope,
 * steps through their approval gate and then the executor, sub-plans as child workflows.
 * All state lives in plain records so the workflow can carry it across continue-as-new.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  condition,
  executeChild,
  isCancellation,
  log,
  patched,
  proxyActivities,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type {
  createControlActivities,
  GateNoticeRequest,
  GateNoticeResult,
  StandingGrantAnswer,
} from '../activities/control.js';
import { attestationSha256 } from '../core/approval/attestation.js';
import type { Envelope } from '../core/approval/dsse.js';
import type { createExecutorActivities } from '../activities/executor.js';
import type { createMcpActivities } from '../activities/mcp.js';
import { offersOneTap, stepRisk } from '../core/notify/risk.js';
import { stepDigest } from '../core/plan/digest.js';
import { stepSummary } from '../core/plan/summary.js';
import { parseDuration } from '../core/duration.js';
import { childPlanWorkflowId, FAILURE_TYPES, SEARCH_ATTRIBUTES, TASK_QUEUES } from '../core/names.js';
import {
  NOTICE_RECORDS_KEPT,
  TERMINAL_STEP_STATUSES,
  type NoticeRecord,
  type PlanStatus,
  type PlanView,
  type StepRecord,
  type SubPlanRecord,
  type TreeView,
  type StepResult,
} from '../core/plan/state.js';
import type {
  McpStep,
  ParallelNode,
  PlanNode,
  PlanSpec,
  SequenceNode,
  StepNode,
  SubPlanNode,
} from '../core/plan/types.js';
import { autoRuleMatches } from '../core/plan/validate.js';
import { planSteps, subPlans } from '../core/plan/walk.js';
import { ApprovalBook } from './approval-book.js';
import { launchedBeforeCancel } from './step-outcome.js';
import type { ApprovalApplied, ApprovalSubmission, CarriedPlanState, PlanWorkflowInput } from './messages.js';

type Outcome = 'succeeded' | 'failed' | 'cancelled';
type Decision = 'approved' | 'denied' | 'timed_out';

const CONTROL_OPTIONS = {
  taskQueue: TASK_QUEUES.control,
  startToCloseTimeout: '30s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
} as const;
const control = proxyActivities<ReturnType<typeof createControlActivities>>(CONTROL_OPTIONS);

/**
 * Plans recorded before standing approvals asked the policy key to sign by the plan's own rule.
 * No worker offers that activity any more: such a plan, still open, waits for a person instead.
 */
const legacyControl = proxyActivities<{
  signAutoApproval(request: {
    workflowId: string;
    runId: string;
    stepPath: string;
    stepDigest: string;
    rule: number;
  }): Promise<Envelope>;
}>(CONTROL_OPTIONS);

// Notices never hold a plan up: they run beside it, retry with backoff, and are given up with a
// record of why. A heartbeat timeout finds a control worker that died mid-delivery within seconds.
const notices = proxyActivities<ReturnType<typeof createControlActivities>>({
  taskQueue: TASK_QUEUES.control,
  startToCloseTimeout: '2m',
  heartbeatTimeout: '10s',
  // A delivery under way when its gate closes finishes and is recorded; one waiting to retry stops.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8 },
});

function executorFor(step: StepNode) {
  const timeoutMs = step.kind === 'gate' ? 0 : parseDuration(step.timeout);
  return proxyActivities<
    ReturnType<typeof createExecutorActivities> & ReturnType<typeof createMcpActivities>
  >({
    taskQueue: TASK_QUEUES.sandbox,
    startToCloseTimeout: timeoutMs + 120_000,
    heartbeatTimeout: '6s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '250ms',
      backoffCoefficient: 2,
      maximumInterval: '5s',
      maximumAttempts: 30,
      nonRetryableErrorTypes: [
        FAILURE_TYPES.stepNotApproved,
        FAILURE_TYPES.executorUntrusted,
        FAILURE_TYPES.stepVanished,
      ],
    },
  });
}

// Matching calls to the catalog reads one file; a catalog that stays unreadable fails the plan.
const catalog = proxyActivities<ReturnType<typeof createMcpActivities>>({
  taskQueue: TASK_QUEUES.sandbox,
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
});

const isTerminal = (status: string) => (TERMINAL_STEP_STATUSES as readonly string[]).includes(status);
const iso = (ms: number) => new Date(ms).toISOString();

// Releasing takes a second; a short start-to-close means an executor that died holding the task
// costs 15 s, not a minute (measured: 61 s per plan caught by a kill in bench/docker.ts).
const workspaces = proxyActivities<ReturnType<typeof createExecutorActivities>>({
  taskQueue: TASK_QUEUES.sandbox,
  startToCloseTimeout: '15s',
  scheduleToCloseTimeout: '3m',
  retry: { initialInterval: '1s', maximumAttempts: 10 },
});

export class PlanInterpreter {
  readonly steps = new Map<string, StepRecord>();
  readonly subPlans = new Map<string, SubPlanRecord>();
  readonly book: ApprovalBook;
  /** Set when the run should continue as new: no new step or child starts. */
  draining = false;
  /** Executor activities and child plans under way. */
  inFlight = 0;
  private readonly stepNodes = new Map<string, StepNode>();
  /** Notice activities not yet finished (sent, given up or stopped). */
  private noticesInFlight = 0;
  /** Per awaiting gate: its notices still in flight, stopped when the gate closes. */
  private readonly noticeScopes = new Map<string, { scope: CancellationScope; inFlight: number }>();
  /** Auto steps awaiting a person whose standing approval should be looked for again (new records came). */
  private readonly grantRetries = new Set<string>();
  /** Steps handed to the executor, with why their approval was withdrawn if it was. */
  private readonly dispatched = new Map<string, { scope: CancellationScope; withdrawn?: string }>();
  /** Why a step's standing approval was withdrawn before it ran, kept for what it then says. */
  private readonly withdrawals = new Map<string, string>();
  private lastPublished = '';

  constructor(
    readonly spec: PlanSpec,
    readonly input: PlanWorkflowInput,
    readonly workflowId: string,
    readonly runId: string,
    readonly options: { legacyPlanRules: boolean; boundedPlan: boolean },
  ) {
    const carried = input.carried;
    for (const step of planSteps(spec)) {
      this.stepNodes.set(step.path, step);
      // An MCP step's digest covers its catalog pin, known once `pinMcpSteps` has run.
      const digest = step.kind === 'mcp' ? '' : stepDigest(step, input.workspaceId, spec.egress);
      this.steps.set(
        step.path,
        carried?.steps[step.path] ?? {
          path: step.path,
          kind: step.kind,
          digest,
          status: 'pending',
          approvals: [],
          remindersSent: 0,
        },
      );
    }
    for (const sub of subPlans(spec)) {
      this.subPlans.set(
        sub.path,
        carried?.subPlans[sub.path] ?? {
          path: sub.path,
          workflowId: childPlanWorkflowId(workflowId, sub.id),
          status: 'pending',
        },
      );
    }
    this.book = new ApprovalBook(
      {
        workflowId,
        runId,
        egress: spec.egress,
        planName: spec.name,
        proposal: input.proposal,
        // The proposal signed this plan's hash (a sub-plan's among its top plan's sub-plans).
        raw: input.plan,
        legacyPlanRules: options.legacyPlanRules,
      },
      this.steps,
      this.stepNodes,
      carried?.trustRecords ?? input.trustRecords,
      carried?.usedNonces ?? [],
    );
  }

  async run(): Promise<Outcome> {
    if (!(await this.pinMcpSteps())) return 'failed';
    return this.node(this.spec.root);
  }

  /**
   * Matches the plan's MCP calls to the executor's catalog before any gate opens, so approvers
   * see each tool's pinned description and sign its exact image and tool hash. A call the
   * catalog refuses fails the plan before anything runs. Returns false then.
   */
  private async pinMcpSteps(): Promise<boolean> {
    const unpinned = [...this.stepNodes.values()].filter(
      (step): step is McpStep => step.kind === 'mcp' && !this.steps.get(step.path)!.mcpPin,
    );
    if (unpinned.length === 0) return true;
    let answer: Awaited<ReturnType<ReturnType<typeof createMcpActivities>['pinMcpCalls']>>;
    try {
      answer = await catalog.pinMcpCalls(
        unpinned.map((step) => ({
          path: step.path,
          server: step.server,
          tool: step.tool,
          arguments: step.arguments,
        })),
      );
    } catch (error) {
      if (isCancellation(error)) throw error;
      answer = {
        pins: {},
        problems: unpinned.map((step) => ({
          path: step.path,
          message: `the MCP catalog could not be read: ${describeFailure(error)}`,
        })),
      };
    }
    for (const step of unpinned) {
      const record = this.steps.get(step.path)!;
      const pin = answer.pins[step.path];
      if (pin) {
        record.mcpPin = pin;
        record.digest = stepDigest(step, this.input.workspaceId, this.spec.egress, pin);
      }
    }
    if (answer.problems.length === 0) return true;
    for (const problem of answer.problems) {
      const record = this.steps.get(problem.path);
      if (!record) continue;
      record.status = 'failed';
      record.error = `refused before anything ran: ${problem.message}`;
    }
    this.close(this.spec.root, 'skipped');
    return false;
  }

  // ---- approvals (Update validator and handler) ----

  checkApproval(submission: ApprovalSubmission): void {
    this.book.check(submission.envelope, submission.deviceRecords, Date.now());
  }

  /**
   * Newer device records reached the plan. Auto steps waiting for a person look for a standing
   * approval again (one may have just been issued); a step handed to the executor on a standing
   * approval that no longer holds (revoked, its signer revoked) is withdrawn: revocation wins.
   */
  adoptTrustRecords(records: Envelope[]): void {
    if (!this.book.adopt(records)) return;
    for (const [path, record] of this.steps) {
      const node = this.stepNodes.get(path)!;
      if (node.approval.mode !== 'auto') continue;
      if (record.status === 'awaiting_approval' && this.verdict(record) === undefined)
        this.grantRetries.add(path);
      const dispatched = this.dispatched.get(path);
      if (record.status === 'running' && dispatched && !dispatched.withdrawn) {
        const authority = this.book.authority(path);
        if (authority.verdict !== 'approved') {
          dispatched.withdrawn = authority.summary;
          log.info('standing approval withdrawn before the step ran', { step: path, why: authority.summary });
          dispatched.scope.cancel();
        }
      }
    }
  }

  applyApproval(submission: ApprovalSubmission): ApprovalApplied {
    const approval = this.book.accept(submission.envelope, submission.deviceRecords, iso(Date.now()));
    const step = [...this.steps.values()].find((s) => s.approvals.includes(approval))!;
    log.info('approval accepted', { step: step.path, decision: approval.decision, device: approval.keyId });
    return {
      stepPath: step.path,
      decision: approval.decision,
      device: approval.deviceName,
      stepStatus: this.verdict(step) ?? step.status,
    };
  }

  // ---- tree walking ----

  private async node(node: PlanNode): Promise<Outcome> {
    switch (node.type) {
      case 'sequence':
        return this.sequence(node);
      case 'parallel':
        return this.parallel(node);
      case 'step':
        return this.step(node);
      case 'plan':
        return this.subPlan(node);
    }
  }

  private async sequence(node: SequenceNode): Promise<Outcome> {
    for (let i = 0; i < node.children.length; i++) {
      const outcome = await this.node(node.children[i]!);
      if (outcome !== 'succeeded') {
        for (const rest of node.children.slice(i + 1))
          this.close(rest, outcome === 'cancelled' ? 'cancelled' : 'skipped');
        return outcome;
      }
    }
    return 'succeeded';
  }

  private async parallel(node: ParallelNode): Promise<Outcome> {
    const limit = node.maxConcurrency || node.children.length;
    let running = 0;
    const scope = new CancellationScope();
    const outcomes = await scope.run(() =>
      Promise.all(
        node.children.map(async (child) => {
          // A freed slot wakes every waiting branch at once: each checks again before taking it.
          // (Histories recorded before the patch let all of them through, and replay that way.)
          if (patched('parallel-limit-held')) while (running >= limit) await condition(() => running < limit);
          else if (running >= limit) await condition(() => running < limit);
          running++;
          try {
            const outcome = await this.node(child);
            if (outcome === 'failed' && node.failFast) scope.cancel();
            return outcome;
          } catch (error) {
            if (!isCancellation(error)) throw error;
            this.close(child, 'cancelled');
            return 'cancelled' as const;
          } finally {
            running--;
          }
        }),
      ),
    );
    if (outcomes.includes('failed')) return 'failed';
    return outcomes.includes('cancelled') ? 'cancelled' : 'succeeded';
  }

  private async step(node: StepNode): Promise<Outcome> {
    const record = this.steps.get(node.path)!;
    try {
      for (;;) {
        if (record.status === 'pending' || record.status === 'awaiting_approval') {
          const decision = await this.decide(node, record);
          if (decision !== 'approved') {
            record.status = decision;
            record.error ??=
              decision === 'timed_out'
                ? `no decision within ${node.approval.timeout}: denied (fail-closed)`
                : `denied by ${record.approvals.find((a) => a.decision === 'deny')?.deviceName}`;
            return 'failed';
          }
          record.status = 'approved';
        }
        if (isTerminal(record.status))
          return record.status === 'succeeded'
            ? 'succeeded'
            : record.status === 'cancelled'
              ? 'cancelled'
              : 'failed';
        if (node.kind === 'gate') {
          record.status = 'succeeded';
          return 'succeeded';
        }
        if (this.draining) await condition(() => !this.draining);
        record.status = 'running';
        this.publish();
        this.inFlight++;
        try {
          const result = await this.execute(node, record);
          if (result === 'withdrawn') {
            // It never started: back to its gate, where a person decides.
            record.status = 'pending';
            record.remindersSent = 0;
            record.escalatedAt = undefined;
            continue;
          }
          record.result = result;
          // A result no executor signed (a completion forged through Temporal) is not what ran.
          const forged = this.book.resultProblem(node.path, result);
          // A step stopped at its time limit failed, whatever status its process left (docker exec exits 0).
          const succeeded =
            !forged && (result.mcp ? !result.mcp.isError : result.exitCode === 0 && !result.timedOut);
          record.status = succeeded ? 'succeeded' : 'failed';
          if (!succeeded) {
            record.error = forged
              ? `its result is not one an executor signed (${forged}): it counts for nothing`
              : describeFailedRun(result, node.timeout);
          }
        } finally {
          this.inFlight--;
        }
        return record.status === 'succeeded' ? 'succeeded' : 'failed';
      }
    } catch (error) {
      return settle(record, error);
    } finally {
      this.publish();
    }
  }

  /**
   * Hands the approved step to the executor, in a scope that is cancelled if its standing approval
   * is withdrawn before it runs. 'withdrawn': the step never started. A step that had started is
   * stopped, and fails saying why.
   */
  private async execute(
    node: Exclude<StepNode, { kind: 'gate' }>,
    record: StepRecord,
  ): Promise<StepResult | 'withdrawn'> {
    const approved = {
      workflowId: this.workflowId,
      runId: this.runId,
      workspaceId: this.input.workspaceId,
      ...(this.spec.egress ? { egress: true } : {}),
      ...(this.spec.workspaceSize ? { workspaceSize: this.spec.workspaceSize } : {}),
      digest: record.digest,
      approvals: record.approvals.map((a) => a.envelope),
      trustRecords: this.book.trustRecords,
      // A grant scoped to the proposer needs the signed plan, to see the step is one of its own.
      ...(this.input.proposal && node.approval.mode === 'auto'
        ? { proposal: this.input.proposal, plan: this.input.plan }
        : {}),
    };
    const executor = executorFor(node);
    const run = () =>
      node.kind === 'mcp'
        ? executor.runMcpStep({ ...approved, step: node, mcpPin: record.mcpPin! })
        : executor.runShellStep({ ...approved, step: node });
    // Only a standing approval is withdrawn from under a step; plans recorded before them keep their shape.
    if (node.approval.mode !== 'auto' || this.options.legacyPlanRules) return run();
    const scope = new CancellationScope();
    const dispatched: { scope: CancellationScope; withdrawn?: string } = { scope };
    this.dispatched.set(node.path, dispatched);
    try {
      return await scope.run(run);
    } catch (error) {
      if (!dispatched.withdrawn || !isCancellation(error) || CancellationScope.current().consideredCancelled)
        throw error;
      if (launchedBeforeCancel(error))
        throw ApplicationFailure.nonRetryable(
          `stopped as it ran: its standing approval no longer holds (${dispatched.withdrawn})`,
          FAILURE_TYPES.stepNotApproved,
        );
      this.withdrawals.set(
        node.path,
        `its standing approval was withdrawn before it ran (${dispatched.withdrawn})`,
      );
      record.grantNote = `${this.withdrawals.get(node.path)}; a person decides`;
      return 'withdrawn';
    } finally {
      this.dispatched.delete(node.path);
    }
  }

  /** Waits at the step's gate until its approvals reach quorum, a device denies, or the deadline passes. */
  private async decide(node: StepNode, record: StepRecord): Promise<Decision> {
    if (record.status === 'pending') {
      const now = Date.now();
      record.status = 'awaiting_approval';
      record.awaitingSince = iso(now);
      record.deadlineMs = now + parseDuration(node.approval.timeout);
      this.publish();
    }
    if (node.approval.mode === 'auto' && this.verdict(record) === undefined)
      await (this.options.legacyPlanRules
        ? this.legacyAutoApprove(node, record)
        : this.askForGrant(node, record));
    if (this.verdict(record) === undefined && record.remindersSent === 0 && !record.escalatedAt)
      this.notify(node, record, 'gate', 0);
    const remindMs = node.approval.remind ? parseDuration(node.approval.remind) : undefined;
    const escalateMs = node.approval.escalate ? parseDuration(node.approval.escalate.after) : undefined;
    for (;;) {
      const verdict = this.verdict(record);
      if (verdict) return this.closeGate(node, record, verdict);
      const now = Date.now();
      const deadline = record.deadlineMs!;
      if (now >= deadline) return this.closeGate(node, record, 'timed_out');
      const since = Date.parse(record.awaitingSince!);
      const nextReminder = remindMs ? since + (record.remindersSent + 1) * remindMs : Infinity;
      const escalation = escalateMs !== undefined && !record.escalatedAt ? since + escalateMs : Infinity;
      const decided = await condition(
        () => this.verdict(record) !== undefined || this.draining || this.grantRetries.has(node.path),
        Math.max(1, Math.min(deadline, nextReminder, escalation) - now),
      );
      if (this.draining && this.verdict(record) === undefined) await condition(() => false); // parked: this run continues as new
      if (this.grantRetries.delete(node.path) && this.verdict(record) === undefined) {
        await this.askForGrant(node, record);
        continue;
      }
      if (decided || Date.now() >= deadline) continue;
      if (Date.now() >= escalation) {
        record.escalatedAt = iso(Date.now());
        log.info('gate escalated', { step: node.path, to: node.approval.escalate!.to });
        this.notify(node, record, 'escalation', 0);
      } else if (Date.now() >= nextReminder) {
        record.remindersSent++;
        this.notify(node, record, 'reminder', record.remindersSent);
      }
    }
  }

  /**
   * The gate closed: notices still being retried are stopped, and every device that was told gets
   * the outcome (replacing the request where the channel allows). Plans recorded before this
   * existed replay without it, hence the patch marker.
   */
  private closeGate(node: StepNode, record: StepRecord, decision: Decision): Decision {
    const gate = this.noticeScopes.get(node.path);
    if (!gate || !patched('notify-gate-closed')) return decision;
    if (gate.inFlight > 0) gate.scope.cancel();
    this.noticeScopes.delete(node.path);
    const by = (choice: 'approve' | 'deny') =>
      record.approvals
        .filter((a) => a.decision === choice)
        .map((a) => a.deviceName)
        .join(', ');
    const outcome =
      decision === 'approved'
        ? `${node.path} approved by ${by('approve') || 'policy'}`
        : decision === 'denied'
          ? `${node.path} denied by ${by('deny')}`
          : `${node.path}: no decision by the deadline, denied (fail-closed)`;
    this.notify(node, record, 'decided', 0, outcome);
    return decision;
  }

  /** The one rule (core/approval/authorize.ts), over the approvals and records the plan holds now. */
  private verdict(record: StepRecord): 'approved' | 'denied' | undefined {
    const { verdict } = this.book.authority(record.path);
    return verdict === 'pending' ? undefined : verdict;
  }

  /**
   * The step asked for a standing approval: the control worker looks for one a person signed that
   * covers it. Found, it is checked here as any approval is; not found, a person decides, and the
   * step says why no grant applied.
   */
  private async askForGrant(node: StepNode, record: StepRecord): Promise<void> {
    const proposal = this.book.proposal();
    let answer: StandingGrantAnswer;
    try {
      answer = await control.applyStandingGrant({
        workflowId: this.workflowId,
        runId: this.runId,
        stepPath: node.path,
        stepDigest: record.digest,
        step: node,
        egress: this.spec.egress,
        ...(record.mcpPin ? { mcpPin: record.mcpPin } : {}),
        planName: typeof proposal === 'object' ? proposal.planName : this.spec.name,
        ...(this.input.proposal ? { proposal: this.input.proposal, plan: this.input.plan } : {}),
      });
    } catch (error) {
      if (isCancellation(error)) throw error;
      record.grantNote = `standing approvals could not be looked up (${describeFailure(error)}); a person decides`;
      return;
    }
    this.book.adopt(answer.records);
    if (!answer.applied) {
      const withdrawn = this.withdrawals.get(node.path);
      record.grantNote = `${withdrawn ? `${withdrawn}, and ` : ''}${answer.reason}; a person decides`;
      return;
    }
    try {
      this.book.check(answer.envelope, answer.records, Date.now());
      this.book.accept(answer.envelope, answer.records, iso(Date.now()));
      record.grantNote = undefined;
    } catch (error) {
      record.grantNote = `the standing approval the control worker applied was refused (${describeFailure(error)}); a person decides`;
      log.warn('standing approval refused by the plan', { step: node.path, error: record.grantNote });
    }
  }

  /** Plans recorded before standing approvals (replay only; no worker signs these any more). */
  private async legacyAutoApprove(node: StepNode, record: StepRecord): Promise<void> {
    const rule = this.spec.policy.autoApprove.findIndex((r) => autoRuleMatches(r, node));
    try {
      const envelope = await legacyControl.signAutoApproval({
        workflowId: this.workflowId,
        runId: this.runId,
        stepPath: node.path,
        stepDigest: record.digest,
        rule,
      });
      this.book.check(envelope, [], Date.now());
      this.book.accept(envelope, [], iso(Date.now()));
    } catch (error) {
      if (isCancellation(error)) throw error;
      record.error = `auto-approval unavailable (${describeFailure(error)}); waiting for a person`;
      log.warn('auto-approval failed; the step waits for a human approval', {
        step: node.path,
        error: record.error,
      });
    }
  }

  /**
   * Sends a notice about the step's gate beside the plan, never in its way; what each channel did
   * (or why delivery was given up) is kept on the step record for the history and the app.
   */
  private notify(
    node: StepNode,
    record: StepRecord,
    kind: GateNoticeRequest['kind'],
    attempt: number,
    outcome?: string,
  ): void {
    const risk = stepRisk(node, this.spec.egress);
    const escalate = node.approval.escalate;
    const request: GateNoticeRequest = {
      kind,
      attempt,
      planName: this.spec.name,
      gate: {
        workflowId: this.workflowId,
        runId: this.runId,
        stepPath: node.path,
        stepDigest: record.digest,
        deadline: iso(record.deadlineMs!),
        risk,
        oneTap: offersOneTap(risk, this.spec.policy),
      },
      audience: {
        approvers: node.approval.approvers,
        ...(escalate && (record.escalatedAt || kind === 'escalation') ? { escalateTo: escalate.to } : {}),
      },
      ...(outcome ? { outcome } : {}),
    };
    const keep = (entry: NoticeRecord) => {
      record.notices = [...(record.notices ?? []), entry].slice(-NOTICE_RECORDS_KEPT);
    };
    let gate = this.noticeScopes.get(node.path);
    if (!gate) {
      gate = { scope: new CancellationScope(), inFlight: 0 };
      if (kind !== 'decided') this.noticeScopes.set(node.path, gate);
    }
    const tracked = gate;
    tracked.inFlight++;
    this.noticesInFlight++;
    void tracked.scope
      .run(() => notices.gateReached(request))
      .finally(() => {
        tracked.inFlight--;
        this.noticesInFlight--;
      })
      .then(
        // Histories recorded before notices had channels answer `{ recorded: true }`.
        (result: Partial<GateNoticeResult>) =>
          keep({
            kind,
            attempt,
            at: iso(Date.now()),
            outcomes: result.outcomes ?? [],
            ...(result.unknown?.length ? { problem: `no device named ${result.unknown.join(', ')}` } : {}),
          }),
        (error: unknown) => {
          if (isCancellation(error)) {
            keep({
              kind,
              attempt,
              at: iso(Date.now()),
              outcomes: [],
              problem: 'stopped while retrying: the gate closed before every channel took the notice',
            });
            return;
          }
          const last = lastNoticeResult(error);
          keep({
            kind,
            attempt,
            at: iso(Date.now()),
            outcomes: last?.outcomes ?? [],
            problem: `delivery given up: ${describeFailure(error)}`,
          });
          log.warn('notice delivery given up; approvals still work from the app and the CLI', {
            step: node.path,
            error: describeFailure(error),
          });
        },
      );
  }

  private async subPlan(node: SubPlanNode): Promise<Outcome> {
    const record = this.subPlans.get(node.path)!;
    if (record.status === 'succeeded') return 'succeeded';
    if (record.status === 'failed') return 'failed';
    if (record.status === 'cancelled') return 'cancelled';
    if (this.draining) await condition(() => !this.draining);
    record.status = 'running';
    this.publish();
    this.inFlight++;
    try {
      await executeChild('planWorkflow', {
        workflowId: record.workflowId,
        taskQueue: TASK_QUEUES.control,
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        args: [
          {
            planId: `${this.input.planId}.${node.id}`,
            plan: node.raw,
            workspaceId: node.shareWorkspace
              ? this.input.workspaceId
              : `${this.input.workspaceId}.${node.id}`,
            proposer: this.input.proposer,
            sharesParentWorkspace: node.shareWorkspace,
            trustRecords: this.book.trustRecords,
            ...(this.input.proposal ? { proposal: this.input.proposal } : {}),
            options: this.input.options,
          } satisfies PlanWorkflowInput,
        ],
      });
      record.status = 'succeeded';
      return 'succeeded';
    } catch (error) {
      return settle(record, error);
    } finally {
      this.inFlight--;
      this.publish();
    }
  }

  /** Marks every not-yet-started step below `node` as skipped or cancelled. */
  private close(node: PlanNode, status: 'skipped' | 'cancelled'): void {
    if (node.type === 'step') {
      const record = this.steps.get(node.path)!;
      if (!isTerminal(record.status) && record.status !== 'running') record.status = status;
    } else if (node.type === 'plan') {
      const record = this.subPlans.get(node.path)!;
      if (record.status === 'pending') record.status = 'cancelled';
    } else node.children.forEach((child) => this.close(child, status));
  }

  // ---- views ----

  status(outcome?: Outcome): PlanStatus {
    if (outcome) return outcome;
    return [...this.steps.values()].some((s) => s.status === 'awaiting_approval')
      ? 'awaiting_approval'
      : 'running';
  }

  /** Keeps search attributes in step with the plan, so lists need no history reads. */
  publish(outcome?: Outcome): void {
    const status = this.status(outcome);
    const awaiting = [...this.steps.values()]
      .filter((s) => s.status === 'awaiting_approval')
      .map((s) => s.path);
    const key = `${status}|${awaiting.join(',')}`;
    if (key === this.lastPublished) return;
    this.lastPublished = key;
    upsertSearchAttributes({
      [SEARCH_ATTRIBUTES.status.name]: [status],
      [SEARCH_ATTRIBUTES.awaiting.name]: awaiting,
      [SEARCH_ATTRIBUTES.planName.name]: [this.spec.name],
    });
  }

  /**
   * Gives notices still under way (the last "decided" one, typically) up to a minute to finish
   * before the plan closes: a closed workflow's activities are dropped. Plans recorded before this
   * closed at once, hence the patch marker.
   */
  async settleNotices(): Promise<void> {
    if (this.noticesInFlight === 0 || !patched('notify-settle-before-close')) return;
    await CancellationScope.nonCancellable(() => condition(() => this.noticesInFlight === 0, '1m'));
  }

  /**
   * Has the executor sign the plan's close — every step's outcome, naming each result it signed —
   * once results are signed here. The close lands in the history, so a history cut short or a step
   * left out shows. Plans recorded before this closed without it, hence the patch marker.
   */
  async attestClose(status: PlanStatus): Promise<void> {
    if (!this.book.expectsAttestations() || !patched('attest-plan-close')) return;
    const steps = Object.fromEntries(
      [...this.steps.values()].map((s) => [
        s.path,
        {
          status: s.status,
          ...(s.result?.attestation ? { result: attestationSha256(s.result.attestation) } : {}),
        },
      ]),
    );
    const subPlans = Object.fromEntries([...this.subPlans.values()].map((s) => [s.path, s.status]));
    await CancellationScope.nonCancellable(() =>
      workspaces.attestPlanClose({ workflowId: this.workflowId, runId: this.runId, status, steps, subPlans }),
    ).catch((error: unknown) => {
      log.warn('the executor did not sign the close of this plan', { error: describeFailure(error) });
    });
  }

  /**
   * Frees the plan's workspace once the plan has ended (a cancelled plan too). Plans recorded
   * before this existed replay without it, hence the patch marker.
   */
  async releaseWorkspace(): Promise<void> {
    if (this.input.sharesParentWorkspace || !patched('release-workspace-at-end')) return;
    await CancellationScope.nonCancellable(() =>
      workspaces.releaseWorkspace({
        workspaceId: this.input.workspaceId,
        workflowId: this.workflowId,
        ...(this.spec.keepWorkspace ? {} : { removeFiles: true }),
      }),
    ).catch((error: unknown) => {
      log.warn('could not release the workspace; the reaper will', {
        workspace: this.input.workspaceId,
        error: describeFailure(error),
      });
    });
  }

  carry(continuedAsNew: number): CarriedPlanState {
    return {
      steps: Object.fromEntries(this.steps),
      subPlans: Object.fromEntries(this.subPlans),
      usedNonces: this.book.nonces,
      trustRecords: this.book.trustRecords,
      continuedAsNew,
      legacyPlanRules: this.options.legacyPlanRules,
      boundedPlan: this.options.boundedPlan,
    };
  }

  view(status: PlanStatus, continuedAsNew: number): PlanView {
    const tree = (node: PlanNode): TreeView => {
      switch (node.type) {
        case 'step':
          return { type: 'step', path: node.path, label: node.name ?? node.id };
        case 'plan':
          return { type: 'plan', path: node.path, label: node.plan.name };
        default:
          return {
            type: node.type,
            path: node.path,
            label: node.id ?? node.type,
            children: node.children.map(tree),
          };
      }
    };
    return {
      planId: this.input.planId,
      workflowId: this.workflowId,
      runId: this.runId,
      name: this.spec.name,
      status,
      workspaceId: this.input.workspaceId,
      egress: this.spec.egress,
      proposer: this.input.proposer,
      verifiedProposer: proposerText(this.book.proposal()),
      steps: [...this.steps.values()].map((record) => {
        const node = this.stepNodes.get(record.path)!;
        return { ...record, node, summary: stepSummary(node) };
      }),
      subPlans: [...this.subPlans.values()],
      tree: tree(this.spec.root),
      continuedAsNew,
    };
  }
}

function proposerText(proposal: ReturnType<ApprovalBook['proposal']>): string {
  if (typeof proposal === 'string') return '';
  return 'agent' in proposal.proposer
    ? `agent ${proposal.proposer.agent}`
    : `device ${proposal.proposer.device}`;
}

/** Records how a step or sub-plan ended when it threw: cancelled, or failed with the reason. */
function settle(record: { status: string; error?: string | undefined }, error: unknown): Outcome {
  if (isCancellation(error)) {
    record.status = 'cancelled';
    return 'cancelled';
  }
  record.status = 'failed';
  record.error = describeFailure(error);
  return 'failed';
}

/** The per-channel outcomes the last failed notice attempt carried in its failure details. */
function lastNoticeResult(error: unknown): Partial<GateNoticeResult> | undefined {
  let current = error as { details?: unknown[]; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 4; depth++) {
    const detail = current.details?.[0] as Partial<GateNoticeResult> | undefined;
    if (detail && Array.isArray(detail.outcomes)) return detail;
    current = current.cause as typeof current;
  }
  return undefined;
}

function describeFailure(error: unknown): string {
  let current = error as { message?: string; cause?: unknown } | undefined;
  const parts: string[] = [];
  while (current && parts.length < 4) {
    if (current.message) parts.push(current.message);
    current = current.cause as typeof current;
  }
  return parts.filter((p, i) => parts.indexOf(p) === i).join(': ') || String(error);
}

function describeFailedRun(result: StepResult, timeout: string): string {
  if (result.mcp?.isError) {
    const said = result.outputTail.trim().split('\n')[0]!.slice(0, 300);
    return `the tool reported an error${said ? `: ${said}` : ''}`;
  }
  if (result.diagnosis) return result.diagnosis;
  if (result.timedOut) return `stopped at its time limit of ${timeout}`;
  return result.exitCode === null ? `killed by ${result.signal}` : `exit code ${result.exitCode}`;
}
