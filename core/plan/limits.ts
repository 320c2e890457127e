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
