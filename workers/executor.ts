/**
 * Executor worker (queue countersign-sandbox): runs approved steps in the sandbox. Holds no
 * secrets; trusts only approvals that chain to its pinned root device.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createExecutorActivities } from '../activities/executor.js';
import { signedResult, type ExecutorTrust } from '../activities/step-trust.js';
import { ExecutionLedger } from '../activities/execution-ledger.js';
import { GrantUseLedger } from '../activities/grant-uses.js';
import { connectTemporalWorker } from '../services/temporal/worker-connection.js';
import { TrustAnchorFile } from '../services/trust-anchor.js';
import { createMcpActivities } from '../activities/mcp.js';
import type { McpCatalog } from '../core/mcp/catalog.js';
import { TASK_QUEUES } from '../core/names.js';
import { RunnerPool } from '../sandbox/runner/pool.js';
import { ensureCatalog, readCatalog } from '../sandbox/mcp/catalog-store.js';
import { loadConfig, PROJECT_ROOT, statePaths, type Config } from './config.js';
import {
  chooseExecutorSandbox,
  createSandbox,
  MCP_CATALOG_TEMPLATE,
  type BackendName,
  type Sandbox,
} from './sandbox-choice.js';
import { isMain, runMain } from './main.js';
import { loadOrCreateKeyFile, pinnedRootReader } from './key-file.js';

/** The installation's MCP catalog, made from the shipped one (images pinned as built here) on first start. */
export async function mcpCatalogReader(config: Config, sandbox: Sandbox): Promise<() => Promise<McpCatalog>> {
  const path = statePaths(config.home).mcpCatalog;
  await ensureCatalog({
    path,
    template: MCP_CATALOG_TEMPLATE,
    projectRoot: PROJECT_ROOT,
    imageIdOf: sandbox.imageIdOf,
  });
  return () => readCatalog(path);
}

/** This host's trust: its chain from the pinned root, its ledgers, its key; each result signed. */
export async function executorTrust(config: Config): Promise<ExecutorTrust> {
  const paths = statePaths(config.home);
  return {
    chain: new TrustAnchorFile(paths.executorChain, pinnedRootReader(paths.pinnedRoot)),
    grantUses: new GrantUseLedger(paths.grantUses),
    ledger: new ExecutionLedger(paths.executionLedger),
    key: await loadOrCreateKeyFile(paths.executorKey, 'executor'),
    attest: signedResult,
  };
}

export async function createExecutorWorker(
  config: Config,
  connection: NativeConnection | undefined,
  backendName: BackendName,
  /** This host's trust (`executorTrust`, unless a benchmark composes its baseline). */
  trust?: ExecutorTrust,
): Promise<{ worker: Worker; runners: RunnerPool }> {
  const paths = statePaths(config.home);
  const sandbox = await createSandbox(backendName, config);
  const catalog = await mcpCatalogReader(config, sandbox);
  const runners = await RunnerPool.start({ size: 1, idleRetireMs: 30_000 });
  trust ??= await executorTrust(config);
  const worker = await Worker.create({
    connection: connection ?? (await connectTemporalWorker(config, 'executor')),
    namespace: config.namespace,
    taskQueue: TASK_QUEUES.sandbox,
    activities: {
      ...createExecutorActivities({
        backend: sandbox.backend,
        runners,
        runsDir: paths.runs,
        trust,
      }),
      ...createMcpActivities({ launcher: sandbox.mcp, catalog, trust }),
    },
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
