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
import type { SandboxBackend } from '../sandbox/backend.js';
import { createDockerBackend } from '../sandbox/docker/docker-backend.js';
import { loadConfig, statePaths, type Config } from './config.js';
import { chooseExecutorSandbox, connectWorkspaceBroker, type BackendName } from './sandbox-choice.js';
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

async function createBackend(name: BackendName, config: Config): Promise<SandboxBackend> {
  if (name === 'jail') return createJailBackend({ workspacesDir: statePaths(config.home).workspaces });
  return createDockerBackend({ broker: await connectWorkspaceBroker(config) });
}

export async function createExecutorWorker(
  config: Config,
  connection: NativeConnection | undefined,
  backendName: BackendName,
): Promise<{ worker: Worker; runners: RunnerPool }> {
  const paths = statePaths(config.home);
  const backend = await createBackend(backendName, config);
  const runners = await RunnerPool.start({ size: 1, idleRetireMs: 30_000 });
  const worker = await Worker.create({
    connection: connection ?? (await NativeConnection.connect({ address: config.temporalAddress })),
    namespace: config.namespace,
    taskQueue: TASK_QUEUES.sandbox,
    activities: createExecutorActivities({
      backend,
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
    const config = loadConfig();
    const sandbox = await chooseExecutorSandbox(config);
    if (sandbox.warning) console.error(sandbox.warning);
    const { worker, runners } = await createExecutorWorker(config, undefined, sandbox.name);
    console.error(`executor worker polling ${TASK_QUEUES.sandbox} (sandbox: ${sandbox.name})`);
    try {
      await worker.run();
    } finally {
      runners.close();
    }
  });
}
