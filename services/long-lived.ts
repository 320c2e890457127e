/** Reads of the long-lived workflows (the device registry, notification settings). */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';

/** One query; the workflow is started (by `ensure`) only the first time it is missing. */
export async function queryLongLived<T>(
  client: Client,
  workflowId: string,
  query: QueryDefinition<T, []>,
  ensure: (client: Client) => Promise<void>,
): Promise<T> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    return await handle.query(query);
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
  }
  await ensure(client);
  return handle.query(query);
}
