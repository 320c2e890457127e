/**
 * Control worker (queue countersign-control): runs the plan and registry workflows and the
 * control activities. Holds the policy key; never executes plan steps.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createControlActivities } from '../activities/control.js';
import { Client, Connection } from '@temporalio/client';
import { JANITOR_WORKFLOW_ID, TASK_QUEUES } from '../core/names.js';
import type { workspaceJanitorWorkflow } from '../workflows/janitor.js';
import { workflowBundlePath } from './bundle.js';
import { loadConfig, statePaths, type Config } from './config.js';
import { loadOrCreateKeyFile } from './key-file.js';
import { isMain, runMain } from './main.js';

/**
 * Starts the workspace janitor unless it already runs (one per namespace). It looks for
 * workspaces of ended plans every COUNTERSIGN_JANITOR_INTERVAL_MS (default a minute).
 */
export async function ensureJanitor(
  client: Client,
  intervalMs = Number(process.env.COUNTERSIGN_JANITOR_INTERVAL_MS ?? 60_000),
): Promise<void> {
  await client.workflow.start<typeof workspaceJanitorWorkflow>('workspaceJanitorWorkflow', {
    workflowId: JANITOR_WORKFLOW_ID,
    taskQueue: TASK_QUEUES.control,
    args: [{ intervalMs }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

export async function createControlWorker(config: Config, connection?: NativeConnection): Promise<Worker> {
  const paths = statePaths(config.home);
  const policyKey = await loadOrCreateKeyFile(paths.policyKey, 'policy');
  const client = new Client({
    connection: await Connection.connect({ address: config.temporalAddress }),
    namespace: config.namespace,
  });
  await ensureJanitor(client);
  return Worker.create({
    connection: connection ?? (await NativeConnection.connect({ address: config.temporalAddress })),
    namespace: config.namespace,
    taskQueue: TASK_QUEUES.control,
    workflowBundle: { codePath: await workflowBundlePath(paths.build) },
    activities: createControlActivities({ policyKey, gateLogPath: paths.gateLog, client }),
  });
}

if (isMain(import.meta.url)) {
  runMain('control worker', async () => {
    const worker = await createControlWorker(loadConfig());
    console.error(`control worker polling ${TASK_QUEUES.control}`);
    await worker.run();
  });
}
