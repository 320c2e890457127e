/**
 * Executor worker (queue countersign-sandbox): runs approved steps in the sandbox. Holds no
 * secrets; trusts only approvals that chain to its pinned root device.
 */
import { readFileSync } from 'node:fs';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createExecutorActivities } from '../activities/executor.js';
import { TASK_QUEUES } from '../core/names.js';
import { createJailBackend } from '../sandbox/jail/jail-backend.js';
import { RunnerPool } from '../sandbox/runner/pool.js';
import { loadConfig, statePaths, type Config } from './config.js';
import { isMain, runMain } from './main.js';

/** The root pin: COUNTERSIGN_ROOT_KEY_ID, else the file `countersign pair` writes. */
export function pinnedRootReader(
  pinFile: string,
  env: NodeJS.ProcessEnv = process.env,
): () => string | undefined {
  return () => {
    if (env.COUNTERSIGN_ROOT_KEY_ID) return env.COUNTERSIGN_ROOT_KEY_ID;
    try {
      return readFileSync(pinFile, 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  };
}

export async function createExecutorWorker(
  config: Config,
  connection?: NativeConnection,
): Promise<{ worker: Worker; runners: RunnerPool }> {
  const paths = statePaths(config.home);
  const runners = await RunnerPool.start({ size: 1, idleRetireMs: 30_000 });
  const worker = await Worker.create({
    connection: connection ?? (await NativeConnection.connect({ address: config.temporalAddress })),
    namespace: config.namespace,
    taskQueue: TASK_QUEUES.sandbox,
    activities: createExecutorActivities({
      backend: createJailBackend({ workspacesDir: paths.workspaces }),
      runners,
      runsDir: paths.runs,
      pinnedRootKeyId: pinnedRootReader(paths.pinnedRoot),
    }),
    maxConcurrentActivityTaskExecutions: 64,
    // Cancellation reaches an activity through its heartbeat: keep that under a second.
    maxHeartbeatThrottleInterval: '500ms',
    defaultHeartbeatThrottleInterval: '500ms',
  });
  return { worker, runners };
}

if (isMain(import.meta.url)) {
  runMain('executor worker', async () => {
    const { worker, runners } = await createExecutorWorker(loadConfig());
    console.error(`executor worker polling ${TASK_QUEUES.sandbox} (backend: jail)`);
    try {
      await worker.run();
    } finally {
      runners.close();
    }
  });
}
