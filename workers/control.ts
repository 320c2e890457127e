/**
 * Control worker (queue countersign-control): runs the plan and registry workflows and the
 * control activities. Holds the policy key; never executes plan steps.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createControlActivities } from '../activities/control.js';
import { TASK_QUEUES } from '../core/names.js';
import { workflowBundlePath } from './bundle.js';
import { loadConfig, statePaths, type Config } from './config.js';
import { loadOrCreateKeyFile } from './key-file.js';
import { isMain, runMain } from './main.js';

export async function createControlWorker(config: Config, connection?: NativeConnection): Promise<Worker> {
  const paths = statePaths(config.home);
  const policyKey = await loadOrCreateKeyFile(paths.policyKey, 'policy');
  return Worker.create({
    connection: connection ?? (await NativeConnection.connect({ address: config.temporalAddress })),
    namespace: config.namespace,
    taskQueue: TASK_QUEUES.control,
    workflowBundle: { codePath: await workflowBundlePath(paths.build) },
    activities: createControlActivities({ policyKey, gateLogPath: paths.gateLog }),
  });
}

if (isMain(import.meta.url)) {
  runMain('control worker', async () => {
    const worker = await createControlWorker(loadConfig());
    console.error(`control worker polling ${TASK_QUEUES.control}`);
    await worker.run();
  });
}
