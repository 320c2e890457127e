/**
 * Plan validation: raw YAML/JSON value in, a fully defaulted PlanSpec out, or every problem
 * reported with the path of the bad node (`steps[2].parallel[1].run: expected string`).
 * Pure: the CLI, the API and the workflow all call this same function.
 */
import { z } from 'zod';
import { utf8ToBytes } from '../bytes.js';
import { canonicalJson } from '../canonical.js';
import { DURATION_PATTERN, durationText, parseDuration } from '../duration.js';
import {
  DURATION_LIMITS,
  parseSize,
  PLAN_LIMITS,
  sizeText,
  WORKSPACE_SIZE_LIMITS,
  WORKSPACE_SIZE_PATTERN,
} from './limits.js';
import type {
  ApprovalPolicy,
  AutoApproveRule,
  PlanNode,
  PlanPolicy,
  PlanSpec,
  SequenceNode,
  StepNode,
} from './types.js';

export interface PlanIssue {
  path: string;
  message: string;
}

export class PlanValidationError extends Error {
  constructor(readonly issues: PlanIssue[]) {
    const shown = issues.slice(0, 20).map((i) => `  ${i.path || '(plan)'}: ${i.message}`);
    if (issues.length > 20) shown.push(`  … and ${issues.length - 20} more`);
    super(`plan is invalid (nothing was started):\n${shown.join('\n')}`);
    this.name = 'PlanValidationError';
  }
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const NODE_KINDS = ['run', 'mcp', 'gate', 'parallel', 'sequence', 'plan'] as const;

const id = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,62}$/,
    'ids are 1-63 of a-z, 0-9, "-" and "_", starting with a letter or digit',
  );
const RISKS = ['low', 'medium', 'high'] as const;
const duration = z.string().regex(DURATION_PATTERN, 'expected a duration such as 30s, 5m, 2h or 1d');
const workspacePath = z
  .string()
  .max(1024)
  .refine(
    (p) => !p.startsWith('/') && !p.split('/').includes('..'),
    'must be a relative path that stays inside the workspace',
  );
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'environment variable names use A-Z, a-z, 0-9 and _');

/** Devices by name or key id: who is told about a gate (anyone registered may still decide). */
const deviceNames = z.array(z.string().min(1).max(200)).min(1).max(16);
const escalation = z.object({ after: duration, to: deviceNames }).strict();
const approvalObject = z
  .object({
    mode: z.enum(['required', 'auto']).default('required'),
    quorum: z.int().min(1).max(16).default(1),
    timeout: duration.optional(),
    remind: duration.optional(),
    escalate: escalation.optional(),
    approvers: deviceNames.optional(),
    risk: z.enum(RISKS).optional(),
  })
  .strict();
const approval = z.union([z.enum(['required', 'auto']), approvalObject]).optional();

const shellFields = z
  .object({
    id,
    name: z.string().max(200).optional(),
    run: z.string().min(1).max(PLAN_LIMITS.maxCommandBytes),
    cwd: workspacePath.default('.'),
    env: z
      .record(envName, z.string().max(4096))
      .refine(
        (e) => Object.keys(e).length <= PLAN_LIMITS.maxEnvEntries,
        `at most ${PLAN_LIMITS.maxEnvEntries} variables`,
      )
      .default({}),
    timeout: duration.default('30m'),
    approval,
  })
  .strict();
/** True when every object inside is a plain object or array (a YAML `!!set` or `!!timestamp` is not JSON). */
function isPlainJson(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (depth > 64) return false;
  if (Array.isArray(value)) return value.every((v) => isPlainJson(v, depth + 1));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every((v) => isPlainJson(v, depth + 1));
}

/** Canonical-JSON-encodable and small; the server's own schema is checked against the catalog later. */
const toolArguments = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  if (!isPlainJson(value)) {
    ctx.addIssue({
      code: 'custom',
      message: 'arguments must be plain JSON (no dates, sets, maps or binary values)',
    });
    return;
  }
  let bytes: number;
  try {
    bytes = utf8ToBytes(canonicalJson(value)).length;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `arguments must be plain JSON: ${(error as Error).message}` });
    return;
  }
  if (bytes > PLAN_LIMITS.maxToolArgumentBytes)
    ctx.addIssue({
      code: 'custom',
      message: `arguments are ${bytes} bytes as JSON, at most ${PLAN_LIMITS.maxToolArgumentBytes}`,
    });
});
const mcpFields = z
  .object({
    id,
    name: z.string().max(200).optional(),
    mcp: z
      .object({
        server: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a catalog server id'),
        tool: z.string().min(1).max(128),
        arguments: toolArguments.default({}),
      })
      .strict(),
    timeout: duration.default('2m'),
    approval,
  })
  .strict();
const gateFields = z
  .object({ id, name: z.string().max(200).optional(), gate: z.string().min(1).max(4096), approval })
  .strict();
const children = z.array(z.unknown()).min(1).max(PLAN_LIMITS.maxChildren);
const sequenceFields = z.object({ id: id.optional(), sequence: children }).strict();
const parallelFields = z
  .object({
    id: id.optional(),
    parallel: children,
    failFast: z.boolean().default(true),
    maxConcurrency: z.int().min(0).max(PLAN_LIMITS.maxChildren).default(0),
  })
  .strict();
const subPlanFields = z
  .object({ id, plan: z.record(z.string(), z.unknown()), shareWorkspace: z.boolean().default(false) })
  .strict();
const autoRule = z
  .object({
    id: id.optional(),
    kind: z.enum(['shell', 'mcp']).optional(),
    run: z.string().optional(),
    runPrefix: z.string().min(1).optional(),
    tool: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*\/.+$/, 'expected server/tool')
      .optional(),
  })
  .strict()
  .refine(
    (r) => Object.keys(r).length > 0,
    'a rule must match on at least one of id, kind, run, runPrefix, tool',
  );
const planFields = z
  .object({
    version: z.literal(1).default(1),
    name: z.string().min(1).max(200),
    description: z.string().max(4096).optional(),
    egress: z.boolean().default(false),
    keepWorkspace: z.boolean().default(true),
    workspaceSize: z
      .string()
      .regex(WORKSPACE_SIZE_PATTERN, 'expected a size such as 512MiB, 4GiB or 1TiB')
      .optional(),
    policy: z
      .object({
        autoApprove: z.array(autoRule).max(64).default([]),
        approvalTimeout: duration.default('24h'),
        remind: duration.optional(),
        escalate: escalation.optional(),
        oneTapUpTo: z.enum(['none', ...RISKS]).default('medium'),
      })
      .strict()
      .default({ autoApprove: [], approvalTimeout: '24h', oneTapUpTo: 'medium' }),
    steps: children,
  })
  .strict();

// C0 and C1 control characters and DEL: what `clean` (services/history/render.ts) strips for display.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;
const hasControl = (text: string) => text.search(CONTROL_CHARACTERS) !== -1;

/** Text from the plan, as it may appear in a message: control characters written as \u escapes. */
function escapeControls(text: string): string {
  return text.replace(CONTROL_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  // A key is the plan's own text: one holding control characters is quoted and escaped, never printed raw.
  if (hasControl(key)) return `${base}["${escapeControls(key)}"]`;
  return base ? `${base}.${key}` : key;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${escapeControls(k)}"`).join(', ')}`;
    case 'invalid_union':
      return 'expected "required", "auto" or an object with mode, quorum, timeout, remind, escalate, approvers, risk';
    default:
      return issue.message;
  }
}

/**
 * `refuse` (every new plan): a plan may only ask for a standing approval (`approval: auto`); its
 * own `policy.autoApprove` rules are refused. `legacy`: the replay of plans recorded before
 * standing approvals, whose rules the policy key applied. `read`: a history of either kind, read
 * (never trusted) by the timeline and the audit.
 */
export type PlanRules = 'refuse' | 'legacy' | 'read';

/** What a duration field of a plan stands for, in the messages that bound it. */
const DURATION_BOUNDS: Record<keyof typeof DURATION_LIMITS, { min: string; max: string }> = {
  stepTimeout: { min: 'the shortest a step may run', max: 'the longest a step may run' },
  mcpTimeout: { min: 'the shortest a tool call may take', max: 'the longest a tool call may take' },
  approvalTimeout: {
    min: 'the shortest a gate may wait for a decision',
    max: 'the longest a gate may wait for a decision',
  },
  remind: {
    min: 'reminders more often would flood the approvers',
    max: 'the longest a gate may wait for a decision',
  },
  escalateAfter: {
    min: 'the first approvers need time to answer',
    max: 'the longest a gate may wait for a decision',
  },
};

export const NUL_REFUSED = 'must not contain a NUL byte (\\0)';
export const CWD_CONTROL_REFUSED = 'must not contain control characters';
export const ENV_CONTROL_REFUSED = 'must not contain control characters other than tab and newline';
// Env values may hold tabs and newlines (a certificate, a key, a small script); every other C0 or
// C1 control character, DEL and the carriage return (which only serves to overwrite a line on a
// terminal) is refused. NUL is refused everywhere, by the screen of the raw plan.
// eslint-disable-next-line no-control-regex
const ENV_VALUE_CONTROLS = /[\u0001-\u0008\u000b-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const CWD_CONTROLS = /[\u0001-\u001f\u007f-\u009f]/;

export const PLAN_RULES_REFUSED =
  "plans can no longer approve their own steps: a person issues a standing approval instead (the app's Grants screen, or `countersign grants add`), and `approval: auto` on a step asks for one";

class PlanValidator {
  readonly issues: PlanIssue[] = [];
  private nodeCount = 0;
  /** Ids of the sub-plans being validated, outermost first. */
  private readonly subPlanIds: string[] = [];
  /** `egress` of the plans being validated, innermost last. */
  private readonly egressOfPlans: boolean[] = [];

  constructor(
    private readonly maxNodes: number,
    private readonly rules: PlanRules,
    /** Durations bounded and control characters refused (every new plan); see validatePlan. */
    private readonly bounded: boolean,
  ) {}

  plan(raw: unknown, at: string, depth: number): PlanSpec | undefined {
    const fields = this.parse(planFields, raw, at);
    if (!fields) return undefined;
    const policy: PlanPolicy = fields.policy;
    if (this.rules === 'refuse' && policy.autoApprove.length > 0)
      this.issues.push({
        path: joinPath(joinPath(at, 'policy'), 'autoApprove'),
        message: PLAN_RULES_REFUSED,
      });
    const policyAt = joinPath(at, 'policy');
    this.bound(policy.approvalTimeout, joinPath(policyAt, 'approvalTimeout'), 'approvalTimeout');
    this.bound(policy.remind, joinPath(policyAt, 'remind'), 'remind');
    this.bound(policy.escalate?.after, joinPath(joinPath(policyAt, 'escalate'), 'after'), 'escalateAfter');
    this.workspaceSize(fields.workspaceSize, joinPath(at, 'workspaceSize'));
    const ids = new Set<string>();
    this.egressOfPlans.push(fields.egress);
    const rootChildren = this.children(fields.steps, joinPath(at, 'steps'), depth + 1, policy, ids);
    this.egressOfPlans.pop();
    const root: SequenceNode = { type: 'sequence', path: '', children: rootChildren };
    return {
      version: 1,
      name: fields.name,
      description: fields.description,
      policy,
      egress: fields.egress,
      keepWorkspace: fields.keepWorkspace,
      ...(fields.workspaceSize ? { workspaceSize: fields.workspaceSize } : {}),
      root,
    };
  }

  /** A workspace size within WORKSPACE_SIZE_LIMITS, else an issue at its path. */
  private workspaceSize(text: string | undefined, at: string): void {
    if (text === undefined) return;
    const bytes = parseSize(text)!;
    if (bytes < WORKSPACE_SIZE_LIMITS.min)
      this.issues.push({
        path: at,
        message: `at least ${sizeText(WORKSPACE_SIZE_LIMITS.min)} (room for a file system)`,
      });
    if (bytes > WORKSPACE_SIZE_LIMITS.max)
      this.issues.push({ path: at, message: `at most ${sizeText(WORKSPACE_SIZE_LIMITS.max)}` });
  }

  /** A duration within its DURATION_LIMITS, else an issue at its path (new plans only: see validatePlan). */
  private bound(text: string | undefined, at: string, kind: keyof typeof DURATION_LIMITS): void {
    if (!this.bounded || text === undefined) return;
    const ms = parseDuration(text);
    const { min, max } = DURATION_LIMITS[kind];
    if (ms < min)
      this.issues.push({ path: at, message: `at least ${durationText(min)} (${DURATION_BOUNDS[kind].min})` });
    else if (ms > max)
      this.issues.push({ path: at, message: `at most ${durationText(max)} (${DURATION_BOUNDS[kind].max})` });
  }

  /** A shell step's cwd and env values as the sandbox and the approver take them (new plans only). */
  private checkShellText(cwd: string, env: Record<string, string>, at: string): void {
    if (!this.bounded) return;
    if (CWD_CONTROLS.test(cwd)) this.issues.push({ path: joinPath(at, 'cwd'), message: CWD_CONTROL_REFUSED });
    for (const [name, value] of Object.entries(env))
      if (ENV_VALUE_CONTROLS.test(value))
        this.issues.push({ path: joinPath(joinPath(at, 'env'), name), message: ENV_CONTROL_REFUSED });
  }

  private parse<T extends z.ZodType>(schema: T, raw: unknown, at: string): z.output<T> | undefined {
    const result = schema.safeParse(raw);
    if (result.success) return result.data;
    for (const issue of result.error.issues) {
      this.issues.push({
        path: issue.path.reduce<string>((p, k) => joinPath(p, k as string | number), at),
        message: describeIssue(issue),
      });
    }
    return undefined;
  }

  private children(
    raw: unknown[],
    at: string,
    depth: number,
    policy: PlanPolicy,
    ids: Set<string>,
  ): PlanNode[] {
    const nodes: PlanNode[] = [];
    raw.forEach((value, index) => {
      const node = this.node(value, joinPath(at, index), depth, policy, ids);
      if (node) nodes.push(node);
    });
    return nodes;
  }

  private node(
    raw: unknown,
    at: string,
    depth: number,
    policy: PlanPolicy,
    ids: Set<string>,
  ): PlanNode | undefined {
    if (depth > PLAN_LIMITS.maxDepth) {
      this.issues.push({ path: at, message: `plan is nested deeper than ${PLAN_LIMITS.maxDepth} levels` });
      return undefined;
    }
    if (++this.nodeCount > this.maxNodes) {
      if (this.nodeCount === this.maxNodes + 1)
        this.issues.push({ path: at, message: `plan has more than ${this.maxNodes} nodes` });
      return undefined;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      this.issues.push({
        path: at,
        message: 'expected a node object (with one of run, mcp, gate, parallel, sequence, plan)',
      });
      return undefined;
    }
    const kinds = NODE_KINDS.filter((k) => k in raw);
    if (kinds.length !== 1) {
      const message =
        kinds.length === 0
          ? `unknown node: expected one of ${NODE_KINDS.join(', ')}; found fields ${
              Object.keys(raw)
                .map((k) => `"${escapeControls(k)}"`)
                .join(', ') || 'none'
            }`
          : `a node has exactly one of ${NODE_KINDS.join(', ')}; found ${kinds.join(' and ')}`;
      this.issues.push({ path: at, message });
      return undefined;
    }
    const claimId = (stepId: string) => {
      if (ids.has(stepId))
        this.issues.push({ path: joinPath(at, 'id'), message: `duplicate id "${stepId}" in this plan` });
      ids.add(stepId);
    };
    switch (kinds[0]) {
      case 'run': {
        const f = this.parse(shellFields, raw, at);
        if (!f) return undefined;
        claimId(f.id);
        this.bound(f.timeout, joinPath(at, 'timeout'), 'stepTimeout');
        this.checkShellText(f.cwd, f.env, at);
        const step: StepNode = {
          type: 'step',
          kind: 'shell',
          path: f.id,
          id: f.id,
          name: f.name,
          run: f.run,
          cwd: f.cwd,
          env: f.env,
          timeout: f.timeout,
          approval: this.approval(f.approval, policy, at),
        };
        this.checkAuto(step, policy, at);
        return step;
      }
      case 'mcp': {
        const f = this.parse(mcpFields, raw, at);
        if (!f) return undefined;
        claimId(f.id);
        this.bound(f.timeout, joinPath(at, 'timeout'), 'mcpTimeout');
        const step: StepNode = {
          type: 'step',
          kind: 'mcp',
          path: f.id,
          id: f.id,
          name: f.name,
          server: f.mcp.server,
          tool: f.mcp.tool,
          arguments: f.mcp.arguments,
          timeout: f.timeout,
          approval: this.approval(f.approval, policy, at),
        };
        this.checkAuto(step, policy, at);
        return step;
      }
      case 'gate': {
        const f = this.parse(gateFields, raw, at);
        if (!f) return undefined;
        claimId(f.id);
        const step: StepNode = {
          type: 'step',
          kind: 'gate',
          path: f.id,
          id: f.id,
          name: f.name,
          gate: f.gate,
          approval: this.approval(f.approval, policy, at),
        };
        if (step.approval.mode === 'auto')
          this.issues.push({
            path: joinPath(at, 'approval'),
            message: 'a gate is a human checkpoint: it cannot be auto-approved',
          });
        return step;
      }
      case 'sequence': {
        const f = this.parse(sequenceFields, raw, at);
        if (!f) return undefined;
        return {
          type: 'sequence',
          id: f.id,
          path: f.id ?? at,
          children: this.children(f.sequence, joinPath(at, 'sequence'), depth + 1, policy, ids),
        };
      }
      case 'parallel': {
        const f = this.parse(parallelFields, raw, at);
        if (!f) return undefined;
        const nodes = this.children(f.parallel, joinPath(at, 'parallel'), depth + 1, policy, ids);
        return {
          type: 'parallel',
          id: f.id,
          path: f.id ?? at,
          failFast: f.failFast,
          maxConcurrency: f.maxConcurrency,
          children: nodes,
        };
      }
      case 'plan': {
        const f = this.parse(subPlanFields, raw, at);
        if (!f) return undefined;
        claimId(f.id);
        const outer = this.subPlanIds.join('.');
        const nested = outer ? `${outer}.${f.id}` : f.id;
        // Reported once, where the limit is crossed, not again for every sub-plan inside.
        if (nested.length > PLAN_LIMITS.maxSubPlanIdPath && outer.length <= PLAN_LIMITS.maxSubPlanIdPath) {
          this.issues.push({
            path: joinPath(at, 'id'),
            message: `nested sub-plan ids become workflow ids: "${nested.slice(0, 40)}…" is ${nested.length} characters, at most ${PLAN_LIMITS.maxSubPlanIdPath}`,
          });
        }
        this.subPlanIds.push(f.id);
        const plan = this.plan(f.plan, joinPath(at, 'plan'), depth + 1);
        this.subPlanIds.pop();
        const parentEgress = this.egressOfPlans.at(-1) ?? false;
        if (plan && f.shareWorkspace && plan.egress !== parentEgress) {
          this.issues.push({
            path: joinPath(joinPath(at, 'plan'), 'egress'),
            message: `a sub-plan that shares its parent's workspace shares its network too (the parent has egress: ${parentEgress})`,
          });
        }
        return (
          plan && { type: 'plan', id: f.id, path: f.id, shareWorkspace: f.shareWorkspace, plan, raw: f.plan }
        );
      }
      default:
        return undefined;
    }
  }

  private approval(raw: z.output<typeof approval>, policy: PlanPolicy, at: string): ApprovalPolicy {
    const fields =
      typeof raw === 'string' ? { mode: raw, quorum: 1 } : (raw ?? { mode: 'required' as const, quorum: 1 });
    if (typeof raw === 'object') {
      const approvalAt = joinPath(at, 'approval');
      this.bound(raw.timeout, joinPath(approvalAt, 'timeout'), 'approvalTimeout');
      this.bound(raw.remind, joinPath(approvalAt, 'remind'), 'remind');
      this.bound(raw.escalate?.after, joinPath(joinPath(approvalAt, 'escalate'), 'after'), 'escalateAfter');
    }
    const result: ApprovalPolicy = {
      mode: fields.mode,
      quorum: fields.quorum,
      timeout: ('timeout' in fields && fields.timeout) || policy.approvalTimeout,
      remind: ('remind' in fields && fields.remind) || policy.remind,
    };
    // Only when given: plans written before these existed keep the same approval objects.
    const escalate = ('escalate' in fields && fields.escalate) || policy.escalate;
    if (escalate) result.escalate = escalate;
    if ('approvers' in fields && fields.approvers) result.approvers = fields.approvers;
    if ('risk' in fields && fields.risk) result.risk = fields.risk;
    if (result.escalate && parseDuration(result.escalate.after) >= parseDuration(result.timeout)) {
      this.issues.push({
        path: joinPath(at, 'approval'),
        message: `escalation after ${result.escalate.after} comes at or after the deadline (${result.timeout}): nobody would be asked in time`,
      });
    }
    if (result.mode === 'auto' && result.quorum > 1) {
      this.issues.push({
        path: joinPath(at, 'approval'),
        message:
          'a step that needs a quorum of people cannot be approved by a standing approval: use approval: required',
      });
    }
    return result;
  }

  private checkAuto(step: StepNode, policy: PlanPolicy, at: string): void {
    if (step.approval.mode !== 'auto' || this.rules !== 'legacy') return;
    if (!policy.autoApprove.some((rule) => autoRuleMatches(rule, step))) {
      this.issues.push({
        path: joinPath(at, 'approval'),
        message: '"auto" needs a rule in policy.autoApprove that matches this step',
      });
    }
  }
}

/** True when every field the rule names matches the step. Only the replay of recorded plans uses these rules. */
export function autoRuleMatches(rule: AutoApproveRule, step: StepNode): boolean {
  if (rule.id !== undefined && rule.id !== step.id) return false;
  if (rule.kind !== undefined && rule.kind !== step.kind) return false;
  const run = step.kind === 'shell' ? step.run : undefined;
  if (rule.run !== undefined && rule.run !== run) return false;
  if (rule.runPrefix !== undefined && !(run ?? '').startsWith(rule.runPrefix)) return false;
  const tool = step.kind === 'mcp' ? `${step.server}/${step.tool}` : undefined;
  if (rule.tool !== undefined && rule.tool !== tool) return false;
  return true;
}

/** Refuses prototype-polluting keys and absurd nesting before any schema code touches the value. */
function screenRawValue(value: unknown, at: string, depth: number): PlanIssue | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  // A plan node sits at most three raw levels below its parent (node, "parallel", array).
  if (depth > PLAN_LIMITS.maxDepth * 4)
    return { path: at, message: `plan is nested deeper than ${PLAN_LIMITS.maxDepth} levels` };
  const entries: [string | number, unknown][] = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.keys(value).map((k) => [k, (value as Record<string, unknown>)[k]]);
  for (const [key, child] of entries) {
    if (typeof key === 'string' && FORBIDDEN_KEYS.has(key)) {
      return { path: joinPath(at, key), message: 'this key name is not allowed (prototype pollution guard)' };
    }
    const found = screenRawValue(child, joinPath(at, key), depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** Every NUL in the plan's text, keys included, anywhere (sub-plans and tool arguments too). */
function findNul(value: unknown, at: string, issues: PlanIssue[]): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) issues.push({ path: at, message: NUL_REFUSED });
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => findNul(v, joinPath(at, i), issues));
    return;
  }
  for (const key of Object.keys(value)) {
    if (key.includes('\u0000')) issues.push({ path: joinPath(at, key), message: `the key ${NUL_REFUSED}` });
    findNul((value as Record<string, unknown>)[key], joinPath(at, key), issues);
  }
}

/**
 * Validates a raw plan value. Throws PlanValidationError naming every bad node.
 *
 * `bounded` (default: when `planRules` is `refuse`, i.e. for every new plan): every duration
 * within DURATION_LIMITS, no NUL byte anywhere in the plan, no control characters in a cwd or
 * an env value. It never changes the plan returned, only whether it is accepted, and is off for
 * recorded plans (`legacy` replay, `read`): a history accepted before these bounds existed must
 * replay and read as it ran.
 */
export function validatePlan(
  raw: unknown,
  options: { maxNodes?: number; planRules?: PlanRules; bounded?: boolean } = {},
): PlanSpec {
  const screened = screenRawValue(raw, '', 0);
  if (screened) throw new PlanValidationError([screened]);
  const rules = options.planRules ?? 'refuse';
  const bounded = options.bounded ?? rules === 'refuse';
  const validator = new PlanValidator(options.maxNodes ?? PLAN_LIMITS.maxNodes, rules, bounded);
  if (bounded) findNul(raw, '', validator.issues);
  const plan = validator.plan(raw, '', 0);
  if (!plan || validator.issues.length > 0) throw new PlanValidationError(validator.issues);
  return plan;
}
