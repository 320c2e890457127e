/**
 * The embedded stack's supervisor: starts the Temporal dev server (SQLite file in the state
 * folder) in a network namespace of its own behind the door (services/temporal/), the worker
 * gate and both workers, restarts a worker that dies, and stops everything on SIGTERM.
 * Started detached by `countersign up`; `countersign down` signals it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TASK_QUEUES } from '../../core/names.js';
import { startWorkerGate, type WorkerGate } from '../../sandbox/gate/worker-gate.js';
import { startDevServer, type DevServer } from '../../services/temporal/server.js';
import { loadApiConfig } from '../../api/config.js';
import { loadConfig, PROJECT_ROOT, statePaths } from '../../workers/config.js';
import { chooseExecutorSandbox, type SandboxChoice } from '../../workers/sandbox-choice.js';
import { stackProcessCommand, type StackFile, type StackProcessName } from './processes.js';

const config = loadConfig();
// Validated here too, so a bad API setting stops `up` with its message instead of a restart loop.
const apiConfig = loadApiConfig();
const paths = statePaths(config.home);
const port = Number(config.temporalAddress.split(':').pop());
const children = new Map<StackProcessName, ChildProcess>();
let stopping = false;
let server: DevServer | undefined;
let gate: WorkerGate | undefined;
let sandbox: SandboxChoice | undefined;

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} supervisor: ${message}\n`);
}

async function writeStackFile(ready: boolean): Promise<void> {
  const pids: Record<string, number> = { supervisor: process.pid };
  if (server?.process.pid) pids.temporal = server.process.pid;
  for (const [name, child] of children) if (child.pid) pids[name] = child.pid;
  const file: StackFile = {
    supervisorPid: process.pid,
    temporalAddress: config.temporalAddress,
    temporalUi: server?.uiUrl,
    temporalWarning: server?.warning,
    namespace: config.namespace,
    backend: sandbox?.name ?? 'jail',
    sandboxWarning: sandbox?.warning,
    gateAddress: gate?.address,
    apiUrl: apiConfig.publicUrl,
    pids,
    startedAt: new Date().toISOString(),
    ready,
  };
  await writeFile(paths.stackFile, JSON.stringify(file, null, 2));
}

async function startWorker(name: StackProcessName, restarts = 0): Promise<void> {
  const { file, args } = await stackProcessCommand(name);
  const out = openSync(join(paths.logs, name === 'api' ? 'api.log' : `${name}-worker.log`), 'a');
  // The executor reaches Temporal only through the worker gate.
  // It reaches Temporal only through the worker gate, in the sandbox chosen once at start.
  const env =
    name === 'executor'
      ? { ...process.env, TEMPORAL_ADDRESS: gate!.address, COUNTERSIGN_SANDBOX: sandbox!.name }
      : name === 'api'
        ? { ...process.env, COUNTERSIGN_TEMPORAL_UI_URL: server?.uiUrl ?? '' }
        : process.env;
  const child = spawn(file, args, { cwd: PROJECT_ROOT, stdio: ['ignore', out, out], env });
  children.set(name, child);
  log(`started ${name} (pid ${child.pid})`);
  const startedAt = Date.now();
  child.once('exit', (code, signal) => {
    if (stopping) return;
    log(`${name} exited (${signal ?? code}); restarting`);
    // A worker that keeps dying right after start backs off, up to 30 s.
    const quick = Date.now() - startedAt < 10_000;
    const delay = quick ? Math.min(30_000, 500 * 2 ** restarts) : 500;
    setTimeout(() => {
      if (stopping) return;
      startWorker(name, quick ? restarts + 1 : 0).then(
        () => writeStackFile(true),
        (error: unknown) => log(`could not restart ${name} worker: ${(error as Error).message}`),
      );
    }, delay);
  });
}

/** The dev server keeps its state in the SQLite file, so a restart resumes every plan. */
async function startTemporal(): Promise<void> {
  server = await startDevServer({
    dbFile: paths.temporalDb,
    port,
    // Only where no private namespace can be made (and the frontend is open anyway).
    uiPort: Number(process.env.COUNTERSIGN_TEMPORAL_UI_PORT ?? port + 1000),
    logFile: join(paths.logs, 'temporal.log'),
    readiness: 'tcp',
    private: { tlsDir: paths.temporalTls, socketPath: paths.temporalSocket },
  });
  if (server.warning) log(`WARNING: ${server.warning}`);
  log(
    server.temporalTlsDir
      ? `Temporal dev server in a private network namespace, reachable only through the door at ${server.address} with a certificate from ${server.temporalTlsDir}; database ${paths.temporalDb}`
      : `Temporal dev server at ${server.address} (UI ${server.uiUrl}), database ${paths.temporalDb}`,
  );
  server.process.once('exit', (code, signal) => {
    if (stopping) return;
    log(`Temporal dev server exited (${signal ?? code}); restarting it on the same database`);
    setTimeout(() => {
      startTemporal().then(
        () => writeStackFile(true),
        (error: unknown) => {
          log(`could not restart Temporal: ${(error as Error).message}`);
          void stop();
        },
      );
    }, 1_000);
  });
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  log('stopping');
  for (const child of children.values()) child.kill('SIGTERM');
  await Promise.race([
    Promise.all(
      [...children.values()].map(
        (c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r))),
      ),
    ),
    sleep(15_000),
  ]);
  await Promise.race([gate?.close(), sleep(3_000)]);
  await server?.stop();
  await rm(paths.stackFile, { force: true });
  process.exit(0);
}

async function main(): Promise<void> {
  await mkdir(paths.logs, { recursive: true });
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  await startTemporal();
  gate = await startWorkerGate({
    upstream: server!.address,
    tlsDir: server!.temporalTlsDir,
    namespace: config.namespace,
    taskQueue: TASK_QUEUES.sandbox,
    log: (line) => log(line),
  });
  log(`worker gate at ${gate.address} (executor → Temporal)`);
  sandbox = await chooseExecutorSandbox(config);
  log(`sandbox: ${sandbox.name}${sandbox.warning ? ` (${sandbox.warning})` : ''}`);
  await startWorker('control');
  await startWorker('executor');
  await startWorker('api');
  await writeStackFile(true);
}

main().catch(async (error: unknown) => {
  log(`failed: ${(error as Error).message}`);
  await stop();
});
