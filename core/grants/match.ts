/**
 * Does a grant cover this exact step? Matched against the same content the step digest covers:
 * the command (or tool and arguments), working directory, environment, network and the MCP pin.
 * Pure and deterministic: the control worker, the workflow, the executor and the audit all call it.
 * Anything uncertain is "no": the step then goes to a person.
 */
import type { Proposer } from '../approval/proposal.js';
import { canonicalJson } from '../canonical.js';
import type { McpPin } from '../mcp/catalog.js';
import { stepRisk } from '../notify/risk.js';
import type { McpStep, Risk, ShellStep, StepNode } from '../plan/types.js';
import type { ArgumentRule, GrantRecord, McpCoverage, ShellCoverage } from './grant.js';
import { hasHiddenCharacters, plainWords } from './shell-words.js';

/** The step as it would be signed, with what the grant's scope and limits look at. */
export interface GrantedStep {
  step: StepNode;
  egress: boolean;
  /** An `mcp` step's call as matched to the catalog. */
  mcpPin?: McpPin | undefined;
  /** The plan's name as its proposal signed it. */
  planName: string;
  /** Who proposed the plan, as verified; undefined when nobody's proposal verified. */
  proposer?: Proposer | undefined;
}

export type Coverage = { ok: true } | { ok: false; reason: string };

const RANK: Record<Risk, number> = { low: 1, medium: 2, high: 3 };
const no = (reason: string): Coverage => ({ ok: false, reason });
const YES: Coverage = { ok: true };

export function grantCovers(grant: GrantRecord, at: GrantedStep): Coverage {
  const { step } = at;
  if (step.kind === 'gate') return no('a checkpoint is always decided by a person');
  if (step.approval.mode !== 'auto')
    return no('the plan did not ask for a standing approval for this step (approval: auto)');
  const scoped = inScope(grant, at.proposer);
  if (!scoped.ok) return scoped;
  if (grant.plans && !grant.plans.includes(at.planName))
    return no(`the plan "${at.planName}" is not one of ${grant.plans.map((p) => `"${p}"`).join(', ')}`);
  if (at.egress && !grant.egress)
    return no('the plan reaches the network (egress), which the grant does not allow');
  if (grant.maxRisk) {
    const risk = stepRisk(step, at.egress);
    if (RANK[risk] > RANK[grant.maxRisk])
      return no(`the step's risk is ${risk}, above the grant's ${grant.maxRisk}`);
  }
  if (grant.covers.kind !== step.kind)
    return no(`the grant covers ${grant.covers.kind} steps, this is ${step.kind}`);
  return step.kind === 'shell'
    ? shellCovers(grant.covers as ShellCoverage, step)
    : mcpCovers(grant.covers as McpCoverage, step, at.mcpPin);
}

function inScope(grant: GrantRecord, proposer: Proposer | undefined): Coverage {
  const scope = grant.scope;
  if (!proposer) return no('the plan carries no verified proposal, so no grant scope can apply');
  if ('agents' in scope)
    return 'agent' in proposer ? YES : no('the grant is for agents; a device proposed this plan');
  if ('agent' in scope)
    return 'agent' in proposer && proposer.agent === scope.agent
      ? YES
      : no(`the grant is for agent ${scope.agent}; this plan was proposed by ${proposerText(proposer)}`);
  return 'device' in proposer && proposer.device === scope.device
    ? YES
    : no(
        `the grant is for plans of device ${scope.device.slice(0, 12)}…; this plan was proposed by ${proposerText(proposer)}`,
      );
}

function proposerText(proposer: Proposer): string {
  return 'agent' in proposer ? `agent ${proposer.agent}` : `device ${proposer.device.slice(0, 12)}…`;
}

/** Only the command: what `commandMatches` says for a shell coverage (the phone's examples use it too). */
export function commandMatches(
  covers: Pick<ShellCoverage, 'command' | 'match' | 'options'>,
  command: string,
): Coverage {
  if (covers.match === 'exact')
    return command === covers.command ? YES : no(`the command is not exactly \`${covers.command}\``);
  const words = plainWords(command);
  if (!words.ok) return no(`the command is not plain words: ${words.reason}`);
  const prefix = plainWords(covers.command);
  if (!prefix.ok) return no("the grant's prefix is not plain words");
  const starts = prefix.words.every((word, i) => words.words[i] === word);
  if (!starts) return no(`the command does not start with the words \`${prefix.words.join(' ')}\``);
  const allowed = new Set(covers.options ?? []);
  const option = words.words
    .slice(prefix.words.length)
    .find((word) => word.startsWith('-') && !allowed.has(word));
  return option === undefined
    ? YES
    : no(
        `it adds the option \`${option}\`, which the grant does not list (options after a prefix must be listed: programs take code through them)`,
      );
}

function shellCovers(covers: ShellCoverage, step: ShellStep): Coverage {
  const command = commandMatches(covers, step.run);
  if (!command.ok) return command;
  if (covers.cwd !== undefined && normalizeCwd(step.cwd) !== normalizeCwd(covers.cwd))
    return no(`the step runs in ${step.cwd}, the grant only in ${covers.cwd}`);
  const allowed = covers.env ?? {};
  for (const [name, value] of Object.entries(step.env)) {
    if (!Object.hasOwn(allowed, name)) return no(`the step sets ${name}, which the grant does not allow`);
    const wanted = allowed[name];
    if (wanted !== null && wanted !== value)
      return no(`the step sets ${name} to another value than the grant's`);
  }
  return YES;
}

function normalizeCwd(cwd: string): string {
  const parts = cwd.split('/').filter((p) => p !== '' && p !== '.');
  return parts.length ? parts.join('/') : '.';
}

function mcpCovers(covers: McpCoverage, step: McpStep, pin: McpPin | undefined): Coverage {
  if (covers.server !== step.server || covers.tool !== step.tool)
    return no(`the grant covers ${covers.server}/${covers.tool}, the step calls ${step.server}/${step.tool}`);
  if (!pin || pin.server !== step.server || pin.tool !== step.tool)
    return no('the call is not pinned to the catalog');
  if (pin.readOnly !== true && !covers.allowWrites)
    return no(`${step.server}/${step.tool} is not annotated read-only, and the grant does not allow writes`);
  for (const [name, value] of Object.entries(step.arguments)) {
    if (!Object.hasOwn(covers.arguments, name))
      return no(`the call passes "${name}", which the grant says nothing about`);
    const fits = argumentFits(covers.arguments[name]!, value);
    if (!fits.ok) return no(`argument "${name}": ${fits.reason}`);
  }
  return YES;
}

export function argumentFits(rule: ArgumentRule, value: unknown): Coverage {
  if ('any' in rule) return YES;
  if ('equals' in rule) return sameJson(rule.equals, value) ? YES : no('it is not the value the grant names');
  if ('oneOf' in rule)
    return rule.oneOf.some((allowed) => sameJson(allowed, value))
      ? YES
      : no('it is none of the values the grant lists');
  if (typeof value !== 'string') return no('a glob matches text only');
  return globMatches(rule.glob, value) ? YES : no(`it does not match ${rule.glob}`);
}

function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}

const MAX_GLOB_VALUE = 4096;

/**
 * `*` any run of characters but `/`, `**` any run at all, `?` one character but `/`; the rest
 * literal. A value with control characters or a `..` path segment never matches (a glob for
 * `/workspace/docs/**` must not reach `/workspace/docs/../../etc`). Linear in memory, O(n·m) time.
 */
export function globMatches(glob: string, value: string): boolean {
  if (value.length > MAX_GLOB_VALUE) return false;
  if (hasHiddenCharacters(value)) return false;
  if (value.split(/[/\\]/).includes('..')) return false;
  const tokens: ('*' | '**' | '?' | string)[] = [];
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] === '*') {
      if (glob[i + 1] === '*') {
        tokens.push('**');
        i++;
      } else tokens.push('*');
    } else tokens.push(glob[i] === '?' ? '?' : glob[i]!);
  }
  // reach[j]: the first i tokens can match value[0, j)
  let reach = new Array<boolean>(value.length + 1).fill(false);
  reach[0] = true;
  for (const token of tokens) {
    const next = new Array<boolean>(value.length + 1).fill(false);
    if (token === '*' || token === '**') {
      let open = false;
      for (let j = 0; j <= value.length; j++) {
        if (reach[j]) open = true;
        next[j] = open;
        if (token === '*' && value[j] === '/') open = false;
      }
    } else {
      for (let j = 0; j < value.length; j++)
        if (reach[j] && (token === '?' ? value[j] !== '/' : value[j] === token)) next[j + 1] = true;
    }
    reach = next;
  }
  return reach[value.length] === true;
}
