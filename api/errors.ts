/**
 * Errors the API answers with: a stable code, a status, and a sentence safe to show. Everything
 * else becomes a 500 whose body says nothing about the internals.
 */
import type { ApprovalRefusal } from '../core/approval/approval.js';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Refusals that mean "the plan is not in that state" (409), rather than "this approval is wrong" (422). */
const CONFLICT_REFUSALS: ReadonlySet<ApprovalRefusal | string> = new Set([
  'not_awaiting',
  'deadline_passed',
  'duplicate_approver',
  'nonce_reused',
]);

/** Status for a UserFacingError code from services/ (Temporal refusals included). */
export function statusForCode(code: string): number {
  if (code === 'not_found' || code === 'unknown_step') return 404;
  if (code === 'unavailable' || code === 'registry_untrusted') return 503;
  if (code === 'already_paired' || CONFLICT_REFUSALS.has(code)) return 409;
  if (code === 'revoked_device' || code === 'unknown_device' || code === 'not_allowed') return 403;
  return 422;
}
