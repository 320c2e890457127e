/** Runs a test notice through the control worker, exactly as a gate's notices go. */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { ChannelOutcome } from '../../core/notify/types.js';
import { TASK_QUEUES } from '../../core/names.js';
import type { notifyTestWorkflow } from '../../workflows/notify-test.js';

export async function sendTestNotice(client: Client, keyId: string): Promise<ChannelOutcome[]> {
  return client.workflow.execute<typeof notifyTestWorkflow>('notifyTestWorkflow', {
    workflowId: `notify-test-${keyId.slice(0, 16)}-${randomBytes(4).toString('hex')}`,
    taskQueue: TASK_QUEUES.control,
    args: [{ keyId }],
    workflowExecutionTimeout: '90s',
  });
}
