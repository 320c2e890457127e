/**
 * How the executor says a cancelled step had already started: its CancelledFailure carries the
 * detail STEP_LAUNCHED_DETAIL. A cancel that reached a step still queued for an executor carries none.
 */
import { STEP_LAUNCHED_DETAIL } from '../core/names.js';

export function launchedBeforeCancel(error: unknown): boolean {
  let current = error as { details?: unknown[]; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 4; depth++) {
    if (Array.isArray(current.details) && current.details.includes(STEP_LAUNCHED_DETAIL)) return true;
    current = current.cause as typeof current;
  }
  return false;
}
