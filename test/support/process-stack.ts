/**
 * A stack of real processes for crash tests: its own Temporal dev server (SQLite file), and the
 * control and executor workers started exactly like `countersign up` starts them, so any of them
 * can be SIGKILLed and restarted. The root device is paired.
 */
import { unmountWorkspaceDisks } from '../../sandbox/workspace-disk.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from '@temporalio/client';
import { Client } from '@temporalio/client';
import { connectTemporal } from '../../services/temporal/connection.js';
import { generateKeyPair } from '../../core/keys.js';
import { openLocalPairing, pairRoot } from '../../services/devices.js';
import { refusalOf } from '../../services/errors.js';
import { decide, planView } from '../../services/plans.js';
import { startDevServer, type DevServer } from '../../services/temporal/server.js';
import { statePaths, type Config } from '../../workers/config.js';
import { freePort } from './ports.js';
import { WorkerProcess } from './processes.js';

export async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

export class ProcessStack {
  server!: DevServer;
  config!: Config;
  client!: Client;
  control!: WorkerProcess;
  executor!: WorkerProcess;
  readonly root = { ...generateKeyPair(), name: 'fault phone' };
  private connection?: Connection;
  private port = 0;

  private constructor(readonly dir: string) {}

  /** `sandbox` is what the executor gets as COUNTERSIGN_SANDBOX. */
  static async start(name: string, sandbox: 'jail' | 'docker'): Promise<ProcessStack> {
    process.env.COUNTERSIGN_SANDBOX = sandbox;
    const stack = new ProcessStack(await mkdtemp(join(tmpdir(), `countersign-${name}-`)));
    stack.port = await freePort();
    await stack.startServer();
    stack.config = {
      home: join(stack.dir, 'home'),
      temporalAddress: stack.server.address,
      temporalTlsDir: stack.server.temporalTlsDir,
      namespace: 'default',
    };
    const paths = statePaths(stack.config.home);
    stack.control = new WorkerProcess('control', stack.config, stack.dir);
    stack.executor = new WorkerProcess('executor', stack.config, stack.dir);
    await stack.control.start();
    await stack.executor.start();
    stack.connection = await connectTemporal(stack.config, 'cli');
    stack.client = new Client({ connection: stack.connection, namespace: 'default' });
    const code = await waitUntil(() => openLocalPairing(stack.client, paths), 'the registry workflow');
    await pairRoot(stack.client, stack.root, code, paths.pinnedRoot);
    return stack;
  }

  async startServer(): Promise<void> {
    this.server = await startDevServer({
      dbFile: join(this.dir, 'temporal.sqlite'),
      port: this.port,
      logFile: join(this.dir, 'temporal.log'),
      private: { tlsDir: join(this.dir, 'tls'), socketPath: join(this.dir, 'temporal', 'frontend.sock') },
    });
  }

  /** Approves through outages: retries until the workflow answers; "already applied" counts as done. */
  async approve(planId: string, step: string): Promise<void> {
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        await decide(this.client, this.root, planId, step, { decision: 'approve' });
        return;
      } catch (error) {
        const code = refusalOf(error)?.code ?? (error as { code?: string }).code;
        if (code === 'duplicate_approver' || code === 'not_awaiting') return;
        if (Date.now() > deadline) throw error;
        await sleep(300);
      }
    }
  }

  async statusOf(planId: string, step: string) {
    return (await planView(this.client, planId)).steps.find((s) => s.path === step)?.status;
  }

  async waitForStatus(planId: string, step: string, status: string): Promise<void> {
    await waitUntil(
      async () => (await this.statusOf(planId, step)) === status || undefined,
      `${step} to be ${status}`,
    );
  }

  /**
   * Approves `step`, SIGKILLs the executor once `hasStarted` says the step runs, starts a new
   * executor and waits for the plan to close.
   */
  async crashExecutorMidStep(
    planId: string,
    workflowId: string,
    step: string,
    hasStarted: () => Promise<boolean>,
  ): Promise<void> {
    await this.waitForStatus(planId, step, 'awaiting_approval');
    await this.approve(planId, step);
    await waitUntil(async () => (await hasStarted()) || undefined, `${step} to start`);
    await this.executor.kill();
    await sleep(1_000);
    await this.executor.start();
    await this.closed(workflowId);
  }

  /** Waits until the workflow has closed (completed or failed), through outages. */
  async closed(workflowId: string): Promise<string> {
    return waitUntil(
      async () => {
        const status = (await this.client.workflow.getHandle(workflowId).describe()).status.name;
        return status === 'RUNNING' ? undefined : status;
      },
      `${workflowId} to close`,
      180_000,
    );
  }

  async close(): Promise<void> {
    await this.control?.kill('SIGTERM');
    await this.executor?.kill('SIGTERM');
    await this.connection?.close();
    await this.server?.stop();
    await unmountWorkspaceDisks(this.dir);
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
