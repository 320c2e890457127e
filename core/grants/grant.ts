/**
 * Standing approvals ("grants"): records a person's device signs, kept in the device registry
 * chain, never in a plan. A grant says which steps may run without asking again — an exact
 * command or a plain-word prefix, or one MCP tool with constraints on its arguments — for whose
 * plans, until when, how many times and up to what risk. A plan can only ask (`approval: auto`);
 * the control worker applies a matching grant; the workflow and the executor check it again.
 * Types and wording only (the web app imports this); the record's schema is in ./schema.ts.
 */
import type { Risk } from '../plan/types.js';

export const GRANT_LIMITS = {
  defaultLifetimeMs: 30 * 86_400_000,
  maxLifetimeMs: 366 * 86_400_000,
  maxUses: 10_000,
  maxPlanNames: 16,
  maxArgumentRules: 32,
  maxGlobChars: 512,
  /** Canonical JSON bytes of one `equals` or `oneOf` value. */
  maxValueBytes: 4096,
} as const;

/** Whose plans may use the grant: one agent token, every agent token, or one CLI device's own plans. */
export type GrantScope = { agent: string } | { agents: 'all' } | { device: string };

export interface ShellCoverage {
  kind: 'shell';
  /** The command as a person typed it. */
  command: string;
  /** `exact`: the step's command is this string. `prefix`: its plain words begin with these words. */
  match: 'exact' | 'prefix';
  /**
   * Prefix only: the option words (`--short`, `-v`, `--format=oneline`) a step may add after the
   * prefix. Any other word that starts with `-` makes the step not match: options are where
   * programs take code (`--node-options=…`, `--upload-pack=…`, `-c …`).
   */
  options?: string[] | undefined;
  /** The step's working directory must be this one (relative to the workspace). */
  cwd?: string | undefined;
  /** Environment the step may set: name → exact value, or null for any value. Nothing else may be set. */
  env?: Record<string, string | null> | undefined;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One argument of an MCP call: exactly a value, one of several, a glob over a string, or anything. */
export type ArgumentRule = { equals: JsonValue } | { oneOf: JsonValue[] } | { glob: string } | { any: true };

export interface McpCoverage {
  kind: 'mcp';
  server: string;
  tool: string;
  /** Every argument a call passes needs a rule here; a call with an argument not listed does not match. */
  arguments: Record<string, ArgumentRule>;
  /** Needed for a tool its server does not annotate as read-only. */
  allowWrites?: boolean | undefined;
}

export interface GrantRecord {
  type: 'grant';
  grantId: string;
  /** A person's label for it ("run the tests"). */
  name: string;
  scope: GrantScope;
  /** Only plans with one of these names. */
  plans?: string[] | undefined;
  covers: ShellCoverage | McpCoverage;
  /** Also steps of plans with `egress: true` (network to the outside world). */
  egress?: boolean | undefined;
  maxUses?: number | undefined;
  /** Only steps at or below this risk (core/notify/risk.ts). */
  maxRisk?: Risk | undefined;
  expiresAt: string;
  at: string;
}

export interface GrantRevocation {
  type: 'revoke-grant';
  grantId: string;
  reason: string;
  at: string;
}

/** What a person chooses when issuing a grant; the id, issue time and default expiry are filled in. */
export type GrantDraft = Omit<GrantRecord, 'type' | 'grantId' | 'at' | 'expiresAt'> & {
  expiresAt?: string | undefined;
};

/** The record a device signs for `draft` (the CLI and the phone build it the same way). */
export function buildGrantRecord(draft: GrantDraft, nowMs: number, grantId: string): GrantRecord {
  return {
    type: 'grant',
    grantId,
    name: draft.name,
    scope: draft.scope,
    ...(draft.plans?.length ? { plans: draft.plans } : {}),
    covers: draft.covers,
    ...(draft.egress ? { egress: true } : {}),
    ...(draft.maxUses !== undefined ? { maxUses: draft.maxUses } : {}),
    ...(draft.maxRisk ? { maxRisk: draft.maxRisk } : {}),
    expiresAt: draft.expiresAt ?? new Date(nowMs + GRANT_LIMITS.defaultLifetimeMs).toISOString(),
    at: new Date(nowMs).toISOString(),
  };
}

/** What the grant covers, in one line: "`npm test` exactly", "commands starting `git status`", "filesystem/read_text_file". */
export function coverageText(covers: GrantRecord['covers']): string {
  if (covers.kind === 'mcp') {
    const args = Object.entries(covers.arguments).map(([name, rule]) => `${name} ${ruleText(rule)}`);
    return `${covers.server}/${covers.tool}${args.length ? ` with ${args.join(', ')}` : ' with no arguments'}${covers.allowWrites ? ' (writes allowed)' : ''}`;
  }
  const where = [
    covers.cwd !== undefined ? `in ${covers.cwd}` : '',
    covers.env && Object.keys(covers.env).length
      ? `with ${Object.entries(covers.env)
          .map(([k, v]) => (v === null ? `${k}=…` : `${k}=${v}`))
          .join(' ')}`
      : '',
  ]
    .filter(Boolean)
    .join(' ');
  const what =
    covers.match === 'exact' ? `\`${covers.command}\` exactly` : `commands starting \`${covers.command}\``;
  return where ? `${what} ${where}` : what;
}

export function ruleText(rule: ArgumentRule): string {
  if ('equals' in rule) return `= ${JSON.stringify(rule.equals)}`;
  if ('oneOf' in rule) return `one of ${rule.oneOf.map((v) => JSON.stringify(v)).join(' | ')}`;
  if ('glob' in rule) return `like ${rule.glob}`;
  return 'any value';
}

export function scopeText(grantScope: GrantScope, nameOf: (id: string) => string = (id) => id): string {
  if ('agents' in grantScope) return 'any agent';
  if ('agent' in grantScope) return `agent "${nameOf(grantScope.agent)}"`;
  return `plans "${nameOf(grantScope.device)}" proposes`;
}

/** The whole grant in one sentence, as the history, the CLI and the phone name it. */
export function grantText(
  grant: GrantRecord,
  nameOf?: (id: string) => string,
  timeText: (iso: string) => string = (iso) => iso,
): string {
  const limits = [
    `for ${scopeText(grant.scope, nameOf)}`,
    grant.plans ? `in plans named ${grant.plans.map((p) => `"${p}"`).join(', ')}` : '',
    grant.egress ? 'also with network' : '',
    grant.maxRisk ? `up to ${grant.maxRisk} risk` : '',
    grant.maxUses !== undefined ? `at most ${grant.maxUses} time${grant.maxUses === 1 ? '' : 's'}` : '',
    `until ${timeText(grant.expiresAt)}`,
  ].filter(Boolean);
  return `${coverageText(grant.covers)}, ${limits.join(', ')}`;
}
