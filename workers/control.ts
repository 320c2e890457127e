/**
 * Control worker (queue countersign-control): runs the plan and registry workflows and the
 * control activities. Holds the policy key; never executes plan steps.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { Client } from '@temporalio/client';
import { createControlActivities } from '../activities/control.js';
import { JANITOR_WORKFLOW_ID, TASK_QUEUES } from '../core/names.js';
import type { workspaceJanitorWorkflow } from '../workflows/janitor.js';
import { connectTemporal } from '../services/temporal/connection.js';
import { connectTemporalWorker } from '../services/temporal/worker-connection.js';
import { workflowBundlePath } from './bundle.js';
import { loadConfig, statePaths, type Config } from './config.js';
import { loadOrCreateKeyFile, pinnedRootReader } from './key-file.js';
import { TrustAnchorFile } from '../services/trust-anchor.js';
import { isMain, runMain } from './main.js';
import { loadNotifyConfig, type NotifyConfig } from '../services/notify/config.js';
import { Notifier, type NotifierDependencies } from '../services/notify/notifier.js';
import { loadOrCreateVapidKeys } from '../services/notify/vapid.js';

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

export interface ControlWorkerOptions {
  /** Notification settings; from the environment by default. */
  notify?: NotifyConfig | undefined;
  /** Extra notifier wiring (tests route firebase-admin to a local server, or inject a fault). */
  notifier?: Pick<NotifierDependencies, 'fcmHttpAgent' | 'webPushAgent' | 'afterSend'> | undefined;
}

export async function createControlWorker(
  config: Config,
  connection?: NativeConnection,
  options: ControlWorkerOptions = {},
): Promise<Worker> {
  const paths = statePaths(config.home);
  const policyKey = await loadOrCreateKeyFile(paths.policyKey, 'policy');
  const client = new Client({
    connection: await connectTemporal(config, 'control'),
    namespace: config.namespace,
  });
  await ensureJanitor(client);
  const notifier = new Notifier({
    client,
    config: options.notify ?? loadNotifyConfig(),
    vapid: await loadOrCreateVapidKeys(paths.vapidKeys),
    ledgerDir: paths.notifyLedger,
    ...options.notifier,
  });
  await notifier.ledger.prune();
  const worker = await Worker.create({
    connection: connection ?? (await connectTemporalWorker(config, 'control')),
    namespace: config.namespace,
    taskQueue: TASK_QUEUES.control,
    workflowBundle: { codePath: await workflowBundlePath(paths.build) },
    activities: createControlActivities({
      policyKey,
      gateLogPath: paths.gateLog,
      client,
      notifier,
      anchor: new TrustAnchorFile(paths.controlChain, pinnedRootReader(paths.pinnedRoot)),
    }),
  });
  // The settings workflow runs on this worker: the offer is published once it polls, not before.
  void notifier.publishOffer().catch((error: unknown) => {
    console.error(`control worker: could not publish the notification offer: ${(error as Error).message}`);
  });
  return worker;
}

/**
 * Fault injection for the crash test, from the environment of a worker process only: the process
 * dies the moment a channel accepted a notice, before the ledger records it.
 */
function faultHooks(): ControlWorkerOptions['notifier'] {
  if (process.env.COUNTERSIGN_FAULT_NOTIFY !== 'die-after-send') return undefined;
  return {
    afterSend: () => {
      console.error('fault injection: dying after a notice was sent, before it was recorded');
      process.kill(process.pid, 'SIGKILL');
    },
  };
}

if (isMain(import.meta.url)) {
  runMain('control worker', async () => {
    const worker = await createControlWorker(loadConfig(), undefined, { notifier: faultHooks() });
    console.error(`control worker polling ${TASK_QUEUES.control}`);
    await worker.run();
  });
}
