/** The timeline of a plan: what `countersign history` prints and the audit export will carry. */
export type TimelineKind =
  | 'plan_started'
  | 'tool_pinned'
  | 'gate_reached'
  | 'gate_escalated'
  /** What a notice about a gate did on each channel (only when some channel is configured). */
  | 'notice'
  /** Notices about a gate kept failing and were given up. */
  | 'notice_failed'
  | 'approval'
  | 'approval_refused_at_audit'
  /** A step asked for a standing approval and none applied (a person decides). */
  | 'grant_not_applied'
  | 'step_started'
  | 'step_retry'
  | 'step_finished'
  | 'step_failed'
  | 'step_cancelled'
  | 'sub_plan_started'
  | 'sub_plan_finished'
  | 'continued_as_new'
  | 'plan_finished'
  /** Someone reset the plan's history through Temporal: what follows is a new run of an old point. */
  | 'plan_reset';

export interface TimelineApproval {
  keyId: string;
  /** The device's name in the registry as it stood at that point of the history ('' when unknown). */
  device: string;
  role: string;
  decision: 'approve' | 'deny';
  reason: string;
  /** Signed by the policy key: applying a standing approval (old histories: a plan's own rule). */
  auto: boolean;
  /** The envelope passed verifyApproval again, here, at audit time. */
  verified: boolean;
  /** Why verification failed: `[code] message`, with an ApprovalRefused or DeviceRecordError code. */
  problem?: string;
  /** The standing approval a person signed, when the policy key applied one. */
  grant?: {
    grantId: string;
    name: string;
    /** What it allows, for whom, until when (core/grants/grant.ts grantText). */
    text: string;
    issuedBy: string;
    issuedAt: string;
    expiresAt: string;
  };
}

export interface TimelineResult {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  outputTail: string;
  attempt: number;
  attachCount: number;
  backend: string;
}

export interface TimelineEntry {
  /** ISO 8601 time of the history event. */
  at: string;
  /** The run whose history holds the event. */
  runId: string;
  kind: TimelineKind;
  /** Step path, or sub-plan path for sub_plan_* entries. */
  step?: string;
  /** One plain sentence, without time or verification mark (renderTimeline adds those). */
  text: string;
  /** kind 'approval' (verified) or 'approval_refused_at_audit' (not verified). */
  approval?: TimelineApproval;
  /** step_finished, and step_failed when the step ran to a non-zero exit. */
  result?: TimelineResult;
}

export interface TimelineStep {
  path: string;
  /** Recomputed here from the plan in the first run's input. */
  digest: string;
  /** The command, or the gate's message. */
  summary: string;
  /** Highest executor attempt seen (0 when the step never reached the executor). */
  attempts: number;
  /** Decisions recorded for the step (approvals and denials, verified or not). */
  approvals: number;
  /**
   * Every recorded decision verified, and, if the step reached the executor, it was the step as
   * planned (same digest) and its verified approvals met its policy before it was scheduled.
   */
  verified: boolean;
}

export interface PlanTimeline {
  workflowId: string;
  planName: string;
  proposer: string;
  /** succeeded, failed, cancelled, terminated, timed_out; or running / awaiting_approval while open. */
  status: string;
  /** Run ids of the continue-as-new chain, first run first. */
  runs: string[];
  /** In time order (history order breaks ties). */
  entries: TimelineEntry[];
  steps: TimelineStep[];
  /** What does not verify about what ran: a result not as signed, a close missing or not matching, a reset. */
  findings: { step?: string; text: string }[];
}

/**
 * Builds the timeline of a plan (`abc123`, `plan-abc123`, or a sub-plan id such as
 * `plan-abc123.docs`) from the histories of all its runs. With `pinnedRootKeyId`, device records
 * must chain to that root (pass the executor's pinned root for a real audit); without it, the
 * first device record in the plan's input is taken as the root.
 */
