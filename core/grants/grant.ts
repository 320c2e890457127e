/**
 * Standing approvals ("grants"): records a person's device signs, kept in the device registry
 * chain, never in a plan. A grant says which steps may run without asking again — an exact
 * command or a plain-word prefix, or one MCP tool with constraints on its arguments — for whose
 * plans, until when, how many times and up to what risk. A plan can only ask (`approval: auto`);
 * the control worker applies a matching grant; the workflow and the executor check it again.
 */
import { z } from 'zod';
import { canonicalJson } from '../canonical.js';
import { utf8ToBytes } from '../bytes.js';
import type { Risk } from '../plan/types.js';
import { COMMAND_RUNNERS, plainWords } from './shell-words.js';

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

const hex16 = z.string().regex(/^[0-9a-f]{16}$/);
const keyId = z.string().regex(/^[0-9a-f]{32}$/);
const isoTime = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'expected an environment variable name');
const relativePath = z
  .string()
  .max(1024)
  .refine(
    (p) => !p.startsWith('/') && !p.split('/').includes('..') && !/[\u0000-\u001f]/.test(p),
    'must be a relative path that stays inside the workspace',
  );

const jsonValue = z.json().superRefine((value, ctx) => {
  let bytes = Infinity;
  try {
    bytes = utf8ToBytes(canonicalJson(value)).length;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `not plain JSON: ${(error as Error).message}` });
    return;
  }
  if (bytes > GRANT_LIMITS.maxValueBytes)
    ctx.addIssue({
      code: 'custom',
      message: `a value is at most ${GRANT_LIMITS.maxValueBytes} bytes as JSON`,
    });
});

const argumentRule = z.union([
  z.object({ equals: jsonValue }).strict(),
  z.object({ oneOf: z.array(jsonValue).min(1).max(64) }).strict(),
  z
    .object({
      glob: z
        .string()
        .min(1)
        .max(GRANT_LIMITS.maxGlobChars)
        .refine((g) => !/[\u0000-\u001f]/.test(g), 'a glob has no control characters'),
    })
    .strict(),
  z.object({ any: z.literal(true) }).strict(),
]);

const shellCoverage = z
  .object({
    kind: z.literal('shell'),
    command: z.string().min(1).max(4096),
    match: z.enum(['exact', 'prefix']),
    cwd: relativePath.optional(),
    env: z.record(envName, z.string().max(4096).nullable()).optional(),
  })
  .strict()
  .superRefine((coverage, ctx) => {
    if (coverage.match !== 'prefix') return;
    const parsed = plainWords(coverage.command);
    if (!parsed.ok) {
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: `a prefix is plain words only; this one has ${parsed.reason}`,
      });
      return;
    }
    if (parsed.words.length === 1 && COMMAND_RUNNERS.has(parsed.words[0]!))
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: `"${parsed.words[0]}" runs whatever its arguments say: a prefix of it alone would allow any command`,
      });
  });

const mcpCoverage = z
  .object({
    kind: z.literal('mcp'),
    server: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a catalog server id'),
    tool: z.string().min(1).max(128),
    arguments: z
      .record(z.string().min(1).max(128), argumentRule)
      .refine((a) => Object.keys(a).length <= GRANT_LIMITS.maxArgumentRules, 'too many argument rules'),
    allowWrites: z.boolean().optional(),
  })
  .strict();

const scope = z.union([
  z.object({ agent: hex16 }).strict(),
  z.object({ agents: z.literal('all') }).strict(),
  z.object({ device: keyId }).strict(),
]);

export const grantRecordSchema = z
  .object({
    type: z.literal('grant'),
    grantId: hex16,
    name: z.string().min(1).max(100),
    scope,
    plans: z.array(z.string().min(1).max(200)).min(1).max(GRANT_LIMITS.maxPlanNames).optional(),
    covers: z.discriminatedUnion('kind', [shellCoverage, mcpCoverage]),
    egress: z.boolean().optional(),
    maxUses: z.int().min(1).max(GRANT_LIMITS.maxUses).optional(),
    maxRisk: z.enum(['low', 'medium', 'high']).optional(),
    expiresAt: isoTime,
    at: isoTime,
  })
  .strict()
  .superRefine((grant, ctx) => {
    const lifetime = Date.parse(grant.expiresAt) - Date.parse(grant.at);
    if (!(lifetime > 0))
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'a grant expires after it is issued' });
    else if (lifetime > GRANT_LIMITS.maxLifetimeMs)
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'a grant lives at most 366 days' });
  });

export const grantRevocationSchema = z
  .object({ type: z.literal('revoke-grant'), grantId: hex16, reason: z.string().max(500), at: isoTime })
  .strict();

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
export function grantText(grant: GrantRecord, nameOf?: (id: string) => string): string {
  const limits = [
    `for ${scopeText(grant.scope, nameOf)}`,
    grant.plans ? `in plans named ${grant.plans.map((p) => `"${p}"`).join(', ')}` : '',
    grant.egress ? 'also with network' : '',
    grant.maxRisk ? `up to ${grant.maxRisk} risk` : '',
    grant.maxUses !== undefined ? `at most ${grant.maxUses} time${grant.maxUses === 1 ? '' : 's'}` : '',
    `until ${grant.expiresAt}`,
  ].filter(Boolean);
  return `${coverageText(grant.covers)}, ${limits.join(', ')}`;
}
