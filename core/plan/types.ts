/** The plan tree after validation. Every field has its default filled in. */

export type ApprovalMode = 'required' | 'auto';

export interface ApprovalPolicy {
  mode: ApprovalMode;
  /** Distinct devices that must approve. Any one deny denies. */
  quorum: number;
  /** How long the gate waits for a decision; after that the step is denied (fail-closed). */
  timeout: string;
  /** Re-notify approvers at this interval while waiting. */
  remind?: string | undefined;
  /** After this long without a decision, further devices are told too (quiet hours do not hold it back). */
  escalate?: Escalation | undefined;
  /** Devices (names or key ids) told first; all people's devices when absent. */
  approvers?: string[] | undefined;
  /** How carefully to approve, when the plan says; otherwise derived from the step (core/notify/risk.ts). */
  risk?: Risk | undefined;
}

export type Risk = 'low' | 'medium' | 'high';

export interface Escalation {
  after: string;
  to: string[];
}

interface NodeBase {
  /** Set by validation: the node's path within its plan, such as `build` or `checks/lint`. */
  path: string;
}

export interface ShellStep extends NodeBase {
  type: 'step';
  kind: 'shell';
  id: string;
  name?: string | undefined;
  run: string;
  /** Working directory relative to the workspace root. */
  cwd: string;
  env: Record<string, string>;
  timeout: string;
  approval: ApprovalPolicy;
}

export interface GateStep extends NodeBase {
  type: 'step';
  kind: 'gate';
  id: string;
  name?: string | undefined;
  gate: string;
  approval: ApprovalPolicy;
}

/** One tool call on a catalog MCP server, in a server container that lives as long as the call. */
export interface McpStep extends NodeBase {
  type: 'step';
  kind: 'mcp';
  id: string;
  name?: string | undefined;
  server: string;
  tool: string;
  arguments: Record<string, unknown>;
  timeout: string;
  approval: ApprovalPolicy;
}

export type StepNode = ShellStep | GateStep | McpStep;

export interface SequenceNode extends NodeBase {
  type: 'sequence';
  id?: string | undefined;
  children: PlanNode[];
}

export interface ParallelNode extends NodeBase {
  type: 'parallel';
  id?: string | undefined;
  failFast: boolean;
  /** 0 means no limit. */
  maxConcurrency: number;
  children: PlanNode[];
}

export interface SubPlanNode extends NodeBase {
  type: 'plan';
  id: string;
  shareWorkspace: boolean;
  plan: PlanSpec;
  /** The sub-plan as written: the child workflow validates it again from this. */
  raw: unknown;
}

export type PlanNode = StepNode | SequenceNode | ParallelNode | SubPlanNode;

export interface AutoApproveRule {
  id?: string | undefined;
  kind?: 'shell' | 'mcp' | undefined;
  run?: string | undefined;
  /** An MCP call as `server/tool`. */
  tool?: string | undefined;
  runPrefix?: string | undefined;
}

export interface PlanPolicy {
  autoApprove: AutoApproveRule[];
  approvalTimeout: string;
  remind?: string | undefined;
  escalate?: Escalation | undefined;
  /** The highest risk whose notifications offer one-tap Approve/Deny; above it, only Review. */
  oneTapUpTo: 'none' | Risk;
}

export interface PlanSpec {
  version: 1;
  name: string;
  description?: string | undefined;
  policy: PlanPolicy;
  /** Steps may open connections to the outside world (never to Countersign or this host's network). */
  egress: boolean;
  /** Keep the workspace's files when the plan ends (its container always goes). */
  keepWorkspace: boolean;
  /**
   * The workspace's disk quota (`4GiB`); absent: the executor's default. A sub-plan that shares
   * its parent's workspace has the parent's.
   */
  workspaceSize?: string | undefined;
  /** The top level is a sequence. */
  root: SequenceNode;
}
