/** The live state of a plan, as the workflow keeps it and as queries, the CLI and the UI show it. */
import type { ChannelOutcome, NoticeKind } from '../notify/types.js';
import type { Envelope } from '../approval/dsse.js';
import type { McpPin } from '../mcp/catalog.js';
import type { StepNode } from './types.js';

export type StepStatus =
  | 'pending'
  | 'awaiting_approval'
  | 'approved'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'denied'
  | 'timed_out'
  | 'cancelled'
  | 'skipped';

export const TERMINAL_STEP_STATUSES: readonly StepStatus[] = [
  'succeeded',
  'failed',
  'denied',
  'timed_out',
  'cancelled',
  'skipped',
];

export type PlanStatus = 'running' | 'awaiting_approval' | 'succeeded' | 'failed' | 'cancelled';

export interface ApprovalRecord {
  keyId: string;
  deviceName: string;
  role: 'root' | 'approver' | 'policy' | 'executor';
  decision: 'approve' | 'deny';
  reason: string;
  /** Workflow time when the approval was accepted (ISO 8601). */
  acceptedAt: string;
  /** True when the policy key signed it: under a standing approval (or, in old histories, a plan's rule). */
  auto: boolean;
  /** The standing approval a person signed that the policy key applied. */
  grant?: GrantRef | undefined;
  envelope: Envelope;
}

/** A standing approval, named as the step's record keeps it. */
export interface GrantRef {
  grantId: string;
  name: string;
  /** The device that signed it (its name). */
  issuedBy: string;
  expiresAt: string;
}

export interface StepResult {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** The last few KiB of the transcript. */
  outputTail: string;
  outputBytes: number;
  truncated: boolean;
  /** The step ran past its `timeout` and was stopped. */
  timedOut: boolean;
  backend: 'jail' | 'docker';
  startedAt: string;
  finishedAt: string;
  /** How many times an executor attached to the running process (more than one after an executor crash). */
  attachCount: number;
  attempt: number;
  /** What the sandbox knows about a kill that the exit status does not say (out of memory). */
  diagnosis?: string | undefined;
  /** For an `mcp` step: how the tool answered (its text is `outputTail`). */
  mcp?: McpOutcome | undefined;
  /** The executor's signature over this result (core/approval/attestation.ts); absent in older histories. */
  attestation?: Envelope | undefined;
}

export interface McpOutcome {
  /** The tool said the call failed. */
  isError: boolean;
  structuredContent?: unknown;
  /** Milliseconds spent starting the server, in initialize, listing tools, in the call, and removing the server. */
  timings: { startMs: number; initializeMs: number; listMs: number; callMs: number; removeMs: number };
}

export interface StepRecord {
  path: string;
  kind: 'shell' | 'gate' | 'mcp';
  digest: string;
  /** An `mcp` step's call as matched to the catalog (its digest covers it); set before its gate opens. */
  mcpPin?: McpPin | undefined;
  status: StepStatus;
  approvals: ApprovalRecord[];
  awaitingSince?: string | undefined;
  /** Epoch ms after which the gate denies (fail-closed). */
  deadlineMs?: number | undefined;
  remindersSent: number;
  /** When further approvers were told (the gate's `escalate.after` passed without a decision). */
  escalatedAt?: string | undefined;
  /** What each notice about this gate did, channel by channel (the latest NOTICE_RECORDS_KEPT). */
  notices?: NoticeRecord[] | undefined;
  result?: StepResult | undefined;
  error?: string | undefined;
  /** Why no standing approval applied to an `approval: auto` step (so a person decides), or what withdrew one. */
  grantNote?: string | undefined;
}

/** One notice about a gate (first, reminder, escalation, decided) and what each channel did with it. */
export interface NoticeRecord {
  kind: NoticeKind;
  attempt: number;
  at: string;
  outcomes: ChannelOutcome[];
  /** Set when delivery kept failing and was given up, or could not start: says why. */
  problem?: string | undefined;
}

export const NOTICE_RECORDS_KEPT = 20;

export interface SubPlanRecord {
  path: string;
  workflowId: string;
  status: PlanStatus | 'pending';
  error?: string | undefined;
}

export interface TreeView {
  type: 'sequence' | 'parallel' | 'step' | 'plan';
  path: string;
  label: string;
  children?: TreeView[];
}

export interface StepView extends StepRecord {
  /** The step as validated: approvers recompute its digest from this before signing. */
  node: StepNode;
  /** The command, or the gate's message: what the approver is asked to allow. */
  summary: string;
}

export interface PlanView {
  planId: string;
  workflowId: string;
  runId: string;
  name: string;
  status: PlanStatus;
  workspaceId: string;
  /** The plan's steps may reach the outside world (part of every step digest when true). */
  egress: boolean;
  proposer: string;
  /** Who proposed it, as verified from its signed proposal ('' when it came without one). */
  verifiedProposer?: string | undefined;
  steps: StepView[];
  subPlans: SubPlanRecord[];
  tree: TreeView;
  continuedAsNew: number;
}

export interface PlanResult {
  planId: string;
  workflowId: string;
  status: PlanStatus;
  steps: { path: string; status: StepStatus; exitCode?: number | null }[];
  subPlans: SubPlanRecord[];
}

/** A plan's view with the views of its sub-plans that have started (each a workflow of its own). */
export interface PlanViewTree {
  view: PlanView;
  children: PlanViewTree[];
}
