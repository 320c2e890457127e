/** Plan text (YAML or JSON) to a validated PlanSpec, with the size limit applied first. */
import { Parser, parse as parseYaml, type CST } from 'yaml';
import { utf8ToBytes } from '../bytes.js';
import { PLAN_LIMITS } from './limits.js';
import type { PlanSpec } from './types.js';
import { PlanValidationError, validatePlan } from './validate.js';

const COLLECTION_TOKENS = new Set(['block-map', 'block-seq', 'flow-collection']);

/**
 * Deepest nesting of YAML collections in the syntax tree, measured without recursion. The YAML
 * composer recurses: a deeply nested text exhausts the stack there, and doing that twice in one
 * process can abort Node (V8 fails to compile a regexp at the stack limit). The parser that builds
 * the syntax tree keeps its own stack, so depth is checked on its output before composing.
 */
function yamlNestingDepth(tokens: readonly CST.Token[], limit: number): number {
  const pending: [unknown, number][] = tokens.map((t) => [t, 0]);
  let deepest = 0;
  while (pending.length > 0) {
    const [value, depth] = pending.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    const type = (value as { type?: unknown }).type;
    const here = typeof type === 'string' && COLLECTION_TOKENS.has(type) ? depth + 1 : depth;
    if (here > deepest) deepest = here;
    if (deepest > limit) return deepest;
    for (const child of Object.values(value)) pending.push([child, here]);
  }
  return deepest;
}

/** The plan as written (what the workflow receives and validates again) and its validated form. */
export interface PlanDocument {
  raw: unknown;
  spec: PlanSpec;
}

export function parsePlanText(text: string): PlanSpec {
  return parsePlanDocument(text).spec;
}

export function parsePlanDocument(text: string): PlanDocument {
  const bytes = utf8ToBytes(text).length;
  if (bytes > PLAN_LIMITS.maxTextBytes) {
    throw new PlanValidationError([
      { path: '', message: `plan is ${bytes} bytes; the limit is ${PLAN_LIMITS.maxTextBytes} bytes` },
    ]);
  }
  // Same bound as the raw-value screen in validatePlan: a node sits a few raw levels below its parent.
  if (yamlNestingDepth([...new Parser().parse(text)], PLAN_LIMITS.maxDepth * 4) > PLAN_LIMITS.maxDepth * 4) {
    throw new PlanValidationError([
      { path: '', message: `plan is nested deeper than ${PLAN_LIMITS.maxDepth} levels` },
    ]);
  }
  let raw: unknown;
  try {
    // YAML is a superset of JSON; aliases are capped so a "billion laughs" document cannot expand.
    raw = parseYaml(text, { maxAliasCount: 100, uniqueKeys: true, prettyErrors: true });
  } catch (error) {
    const reason =
      error instanceof RangeError ? 'plan is nested too deeply to parse' : (error as Error).message;
    throw new PlanValidationError([
      { path: '', message: `not valid YAML or JSON: ${reason.split('\n')[0]}` },
    ]);
  }
  return { raw, spec: validatePlan(raw) };
}
