/**
 * A real Countersign stack for one test file: its own namespace on the shared Temporal dev
 * server, its own state folder, the real control and executor workers, and a paired root
 * device (the CLI's key).
 */
import { unmountWorkspaceDisks } from '../../sandbox/workspace-disk.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import { generateKeyPair, type KeyPair } from '../../core/keys.js';
import { openLocalPairing, pairRoot } from '../../services/devices.js';
import { connectTemporal } from '../../services/temporal/connection.js';
import { connectTemporalWorker } from '../../services/temporal/worker-connection.js';
import { ensureNamespace } from '../../services/temporal/server.js';
import { statePaths, type Config } from '../../workers/config.js';
import { createControlWorker, type ControlWorkerOptions } from '../../workers/control.js';
import { createExecutorWorker } from '../../workers/executor.js';

export interface TestStack {
  config: Config;
  client: Client;
  root: KeyPair & { name: string };
  paths: ReturnType<typeof statePaths>;
  startWorkers(which?: { control?: boolean; executor?: boolean }): Promise<void>;
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

let runtimeInstalled = false;

export async function startTestStack(
  name: string,
  options: {
    workers?: boolean;
    pair?: boolean;
    backend?: 'jail' | 'docker';
    /** Notification channels and hooks for the control worker (none by default). */
    control?: ControlWorkerOptions;
  } = {},
): Promise<TestStack> {
  if (!runtimeInstalled) {
    const level = (process.env.COUNTERSIGN_TEST_LOG as 'WARN' | undefined) ?? 'ERROR';
    Runtime.install({
      logger: new DefaultLogger(level),
      telemetryOptions: { logging: { filter: { core: level, other: level } } },
    });
    runtimeInstalled = true;
  }
  const target = sharedTemporal();
  const namespace = `${name}-${Date.now().toString(36)}`;
  await ensureNamespace(target, namespace);
  const home = await mkdtemp(join(tmpdir(), `countersign-${name}-`));
  const config: Config = { home, ...target, namespace };
  const paths = statePaths(home);
  const connection = await connectTemporal(config, 'control');
  const client = new Client({ connection, namespace });
  const nativeConnection = await connectTemporalWorker(config, 'control');
  const running: { worker: Worker; done: Promise<void>; cleanup?: () => void }[] = [];

  const stack: TestStack = {
    config,
    client,
    paths,
    root: { ...generateKeyPair(), name: 'test phone' },
    async startWorkers(which = { control: true, executor: true }) {
      if (which.control) {
        const worker = await createControlWorker(config, nativeConnection, options.control);
        running.push({ worker, done: worker.run() });
      }
      if (which.executor) {
        const { worker, runners } = await createExecutorWorker(
          config,
          nativeConnection,
          options.backend ?? 'jail',
        );
        running.push({ worker, done: worker.run(), cleanup: () => runners.close() });
      }
    },
    async stopWorkers() {
      for (const r of running.splice(0)) {
        r.worker.shutdown();
        await r.done.catch(() => undefined);
        r.cleanup?.();
      }
    },
    async close() {
      await stack.stopWorkers();
      await nativeConnection.close();
      await connection.close();
      // The executor's workspace file systems, or rm would empty them and leave their loop devices held.
      await unmountWorkspaceDisks(paths.workspaces);
      await rm(home, { recursive: true, force: true }).catch(() => undefined);
    },
  };

  if (options.workers !== false) await stack.startWorkers();
  if (options.pair !== false) {
    if (options.workers === false) throw new Error('pairing needs the control worker');
    await pairTestRoot(stack);
  }
  return stack;
}

/** The run's one Temporal server: its door, and the certificates that pass it. */
export function sharedTemporal(): Pick<Config, 'temporalAddress' | 'temporalTlsDir'> {
  return { temporalAddress: inject('temporalAddress'), temporalTlsDir: inject('temporalTlsDir') };
}

/** Pairs the stack's root key the way `countersign pair` does, with the policy key introduced. */
export async function pairTestRoot(stack: TestStack): Promise<void> {
  const code = await openLocalPairing(stack.client, stack.paths);
  if (!code) throw new Error('registry already paired');
  await pairRoot(stack.client, stack.root, code, stack.paths.pinnedRoot);
}
