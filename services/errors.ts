/** Turns Temporal client errors into messages a person can act on. */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

export class UserFacingError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'UserFacingError';
  }
}

/** The refusal code and message inside an Update failure (`[wrong_digest] …`), or undefined. */
export function refusalOf(error: unknown): { code: string; message: string } | undefined {
  const cause = error instanceof WorkflowUpdateFailedError ? error.cause : error;
  if (cause instanceof ApplicationFailure) {
    const code = (cause.details?.[0] as string | undefined) ?? cause.type ?? 'refused';
    return { code, message: cause.message.replace(/^\[[a-z_]+\] /, '') };
  }
  return undefined;
}

export function explain(error: unknown, what: string): never {
  if (error instanceof WorkflowNotFoundError)
    throw new UserFacingError(`${what}: no such plan (${error.workflowId})`, 'not_found');
  const refusal = refusalOf(error);
  if (refusal)
    throw new UserFacingError(`${what}: refused [${refusal.code}]: ${refusal.message}`, refusal.code);
  throw error;
}
