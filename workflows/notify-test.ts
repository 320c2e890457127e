/** A test notice to one device's channels: the app's "send a test notification" and `countersign notify test`. */
import { proxyActivities } from '@temporalio/workflow';
import type { createControlActivities } from '../activities/control.js';
import type { ChannelOutcome } from '../core/notify/types.js';

const control = proxyActivities<ReturnType<typeof createControlActivities>>({
  startToCloseTimeout: '1m',
  // A test reports what happened the first time; retrying would hide a flaky channel.
  retry: { maximumAttempts: 1 },
});

export async function notifyTestWorkflow(input: { keyId: string }): Promise<ChannelOutcome[]> {
  return control.notifyTest(input);
}
