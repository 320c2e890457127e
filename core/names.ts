/** Names shared by every process: task queues, workflow ids, search attributes, failure types. */

export const TASK_QUEUES = {
  control: 'countersign-control',
  sandbox: 'countersign-sandbox',
} as const;

export const REGISTRY_WORKFLOW_ID = 'countersign-devices';
/** Each device's notification channels and quiet hours, and what this installation can send. */
export const NOTIFY_SETTINGS_WORKFLOW_ID = 'countersign-notify-settings';
/** The workflow that has leftover workspaces of ended plans removed. */
export const JANITOR_WORKFLOW_ID = 'countersign-workspace-janitor';

export function planWorkflowId(planId: string): string {
  return `plan-${planId}`;
}

/** The plan id in a plan workflow id (sub-plans: `<parent>.<sub>`), or undefined for other workflows. */
export function planIdOf(workflowId: string): string | undefined {
  return workflowId.startsWith('plan-') ? workflowId.slice('plan-'.length) : undefined;
}

/**
 * Whether plan workflow `workflowId` may use workspace `workspaceId`: its own (the plan id), or the
 * workspace of a plan it is a sub-plan of (`plan-a.docs` shares `a`'s when the plan says so). No
 * plan names another plan's workspace.
 */
export function workspaceBelongsTo(workspaceId: string, workflowId: string): boolean {
  const own = planIdOf(workflowId);
  return own !== undefined && (own === workspaceId || own.startsWith(`${workspaceId}.`));
}

/** Children derive their ids from the parent, so a replayed parent finds the same child. */
export function childPlanWorkflowId(parentWorkflowId: string, subPlanId: string): string {
  return `${parentWorkflowId}.${subPlanId}`;
}

export const SEARCH_ATTRIBUTES = {
  status: { name: 'CountersignStatus', type: 'Keyword' },
  awaiting: { name: 'CountersignAwaiting', type: 'KeywordList' },
  planName: { name: 'CountersignPlanName', type: 'Keyword' },
  /** The agent token that proposed the plan ('' for people): an agent lists only its own plans. */
  agent: { name: 'CountersignAgent', type: 'Keyword' },
} as const;

/** `type` values of non-retryable ApplicationFailures: stable, so callers can branch on them. */
export const FAILURE_TYPES = {
  invalidPlan: 'InvalidPlan',
  planFailed: 'PlanFailed',
  approvalRefused: 'ApprovalRefused',
  deviceRecordRefused: 'DeviceRecordRefused',
  stepNotApproved: 'StepNotApproved',
  executorUntrusted: 'ExecutorUntrusted',
  stepVanished: 'StepVanished',
  sandboxUnavailable: 'SandboxUnavailable',
  sandboxRefused: 'SandboxRefused',
  /** An MCP call was refused before it was made: unknown server or tool, bad arguments, a tool that changed. */
  mcpCallRefused: 'McpCallRefused',
  /** The MCP server crashed, hung, wrote garbage or ran out of memory. */
  mcpServerFailed: 'McpServerFailed',
  /** The executor died during an earlier attempt of an MCP call that may have run: it is not repeated. */
  mcpCallInterrupted: 'McpCallInterrupted',
  notifySettingsRefused: 'NotifySettingsRefused',
  /** A notification channel failed in a way worth another try (down, 429, 5xx). */
  notifyChannelFailed: 'NotifyChannelFailed',
} as const;

/** A cancelled step's CancelledFailure says `launched` when its process had started (the plan tells "stopped" from "never ran"). */
export const STEP_LAUNCHED_DETAIL = 'launched';
