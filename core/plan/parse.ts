/** Plan text (YAML or JSON) to a validated PlanSpec, with the size limit applied first. */
import { parse as parseYaml } from 'yaml';
import { utf8ToBytes } from '../bytes.js';
import { PLAN_LIMITS } from './limits.js';
import type { PlanSpec } from './types.js';
import { PlanValidationError, validatePlan } from './validate.js';

export function parsePlanText(text: string): PlanSpec {
  const bytes = utf8ToBytes(text).length;
  if (bytes > PLAN_LIMITS.maxTextBytes) {
    throw new PlanValidationError([
      { path: '', message: `plan is ${bytes} bytes; the limit is ${PLAN_LIMITS.maxTextBytes} bytes` },
    ]);
  }
  let raw: unknown;
  try {
    // YAML is a superset of JSON; aliases are capped so a "billion laughs" document cannot expand.
    raw = parseYaml(text, { maxAliasCount: 100, uniqueKeys: true, prettyErrors: true });
  } catch (error) {
    const reason = error instanceof RangeError ? 'plan is nested too deeply to parse' : (error as Error).message;
    throw new PlanValidationError([{ path: '', message: `not valid YAML or JSON: ${reason.split('\n')[0]}` }]);
  }
  return validatePlan(raw);
}
