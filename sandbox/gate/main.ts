/**
 * The worker gate as a process of its own (the compose deployment): listens where the executor
 * connects and forwards only the sandbox queue's worker RPCs to the Temporal frontend. In the
 * embedded stack the supervisor starts the same gate in-process instead.
 *
 * COUNTERSIGN_GATE_UPSTREAM: the Temporal frontend, host:port (default TEMPORAL_ADDRESS).
 * COUNTERSIGN_GATE_LISTEN: host:port to listen on (default 127.0.0.1:7233).
 * TEMPORAL_NAMESPACE: the only namespace that passes (default `default`).
 */
import { TASK_QUEUES } from '../../core/names.js';
import { ConfigError, loadConfig } from '../../workers/config.js';
import { isMain, runMain } from '../../workers/main.js';
import { startWorkerGate, type WorkerGateOptions } from './worker-gate.js';

const HOST_PORT = /^([A-Za-z0-9.[\]:-]+):(\d{1,5})$/;

/** The gate's options from the environment; a bad value names its variable. */
export function gateOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerGateOptions {
  const config = loadConfig(env);
  const upstream = env.COUNTERSIGN_GATE_UPSTREAM || config.temporalAddress;
  if (!HOST_PORT.test(upstream))
    throw new ConfigError(`COUNTERSIGN_GATE_UPSTREAM must be host:port, got "${upstream}"`);
  const listen = env.COUNTERSIGN_GATE_LISTEN || '127.0.0.1:7233';
  const match = HOST_PORT.exec(listen);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535)
    throw new ConfigError(`COUNTERSIGN_GATE_LISTEN must be host:port, got "${listen}"`);
  return {
    upstream,
    namespace: config.namespace,
    taskQueue: TASK_QUEUES.sandbox,
    host: match[1]!.replace(/^\[(.*)\]$/, '$1'),
    port,
    tlsDir: config.temporalTlsDir,
  };
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

if (isMain(import.meta.url)) {
  runMain('worker gate', async () => {
    const options = gateOptionsFromEnv();
    const gate = await startWorkerGate({ ...options, log });
    log(
      `worker gate listening on ${gate.address}: ${options.namespace}/${options.taskQueue} → ${options.upstream}`,
    );
    const stop = (signal: string) => {
      log(`worker gate: ${signal}, closing`);
      // Open polls last up to a minute: the executor's SDK retries them, so do not wait them out.
      setTimeout(() => process.exit(0), 3_000).unref();
      void gate.close().finally(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
