/** Hard limits on plans: a plan beyond them is refused before anything starts. */
export const PLAN_LIMITS = {
  /** Bytes of plan text (YAML or JSON). Temporal payloads must stay well under its 2 MiB blob limit. */
  maxTextBytes: 512 * 1024,
  maxDepth: 24,
  maxNodes: 1_000,
  maxChildren: 256,
  maxCommandBytes: 16 * 1024,
  maxEnvEntries: 64,
  /** Bytes of an MCP step's arguments as canonical JSON. */
  maxToolArgumentBytes: 64 * 1024,
  /**
   * Characters of nested sub-plan ids joined with dots (`docs.review.fix`): they become child
   * workflow ids, which Temporal on PostgreSQL keeps to 255 characters.
   */
  maxSubPlanIdPath: 200,
} as const;

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Bounds, in milliseconds, on every duration a plan gives; validatePlan refuses a value outside
 * them with its path. The grammar alone reads up to 999999999d: far past any Temporal timer, a
 * safe integer and the range of a Date (a deadline of that size fails a plan with "Invalid time
 * value", a step timeout of that size wedges its workflow).
 *
 * Every duration is positive: zero is no time at all (a step killed as it starts, a gate denied
 * before anyone is asked, notices without pause).
 */
export const DURATION_LIMITS = {
  /**
   * A shell step's `timeout`. Below a second a sandbox has not started, so the timeout can only
   * kill the step; a step that runs longer than a week is a service, not a step.
   */
  stepTimeout: { min: SECOND, max: 7 * DAY },
  /** An MCP step's `timeout`: the catalog's `callTimeout` is at most 1h and caps every call anyway. */
  mcpTimeout: { min: SECOND, max: HOUR },
  /**
   * `approval.timeout` and `policy.approvalTimeout`. A short deadline only denies the plan's own
   * step sooner (fail-closed), so seconds are allowed; nothing should wait for a person longer
   * than a month.
   */
  approvalTimeout: { min: SECOND, max: 30 * DAY },
  /**
   * `remind` and `escalate.after`: each sends notices to people, so they have a floor (a reminder
   * every millisecond is a notice flood, an escalation after a second asks the next person before
   * the first could answer). No longer than the longest deadline.
   */
  remind: { min: MINUTE, max: 30 * DAY },
  escalateAfter: { min: MINUTE, max: 30 * DAY },
} as const;

const MIB = 1024 ** 2;

/**
 * A workspace's disk quota (the plan's `workspaceSize`): every workspace is a file system of this
 * size. Below 16 MiB ext4 has little room for files; a terabyte is past any step's honest need.
 */
export const WORKSPACE_SIZE_LIMITS = { min: 16 * MIB, max: 1024 ** 4, default: 4 * 1024 ** 3 } as const;

const SIZE_UNITS = { MiB: MIB, GiB: 1024 * MIB, TiB: 1024 * 1024 * MIB } as const;
export const WORKSPACE_SIZE_PATTERN = /^([1-9][0-9]{0,6})(MiB|GiB|TiB)$/;

/** `512MiB`, `4GiB`, `1TiB` in bytes; undefined for anything else. */
export function parseSize(text: string): number | undefined {
  const match = WORKSPACE_SIZE_PATTERN.exec(text);
  return match ? Number(match[1]) * SIZE_UNITS[match[2] as keyof typeof SIZE_UNITS] : undefined;
}

/** Bytes as the largest unit that keeps a whole number: 4294967296 → `4GiB`. */
export function sizeText(bytes: number): string {
  for (const [unit, size] of Object.entries(SIZE_UNITS).reverse())
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return `${bytes} bytes`;
}
