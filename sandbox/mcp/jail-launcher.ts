/**
 * MCP servers in the bubblewrap jail, where no Docker engine exists: the same command as in the
 * image, with the server's files bound read-only at /opt/mcp, no network, and the workspace only
 * when the catalog entry asks for it. The jail is the shell steps' one (sandbox/jail/launch.ts):
 * an unprivileged host user, seccomp, and a cgroup holding the entry's memory and process limits.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { McpServerEntry } from '../../core/mcp/catalog.js';
import { SandboxRefused } from '../backend.js';
import type { JailLimits } from '../jail/cgroups.js';
import type { WorkspaceDisks } from '../workspace-disk.js';
import { jailSystemArgs, workspaceFolder } from '../jail/jail-backend.js';
import {
  DEFAULT_JAIL_LIMITS,
  jailArgv,
  jailHostOf,
  limitsHit,
  reportFile,
  stagedPath,
} from '../jail/launch.js';
import { sourceLockOf } from './catalog-store.js';
import { tailKeeper, type LaunchedServer, type McpLauncher } from './launcher.js';

export interface JailMcpOptions {
  projectRoot: string;
  workspacesDir: string;
  bwrapPath?: string;
  /** The jail's own files; default `<workspacesDir>/.jail` (shared with the shell steps' jail). */
  stateDir?: string;
  /** The shell steps' size-limited workspaces, so a plan's first MCP call makes its workspace as a step would. */
  disks?: WorkspaceDisks;
}

/** How long a server is given to go after SIGTERM before its process group is killed. */
const STOP_GRACE_MS = 3_000;

export function mcpLimits(entry: McpServerEntry): JailLimits {
  return { ...DEFAULT_JAIL_LIMITS, memoryBytes: entry.limits.memoryMiB * 1024 ** 2, pids: entry.limits.pids };
}

/** bwrap's arguments for a server; `sourceDir` and `workspaceDir` as bwrap sees them (staged). */
export function mcpJailArgs(
  entry: McpServerEntry,
  sourceDir: string,
  workspaceDir: string | undefined,
): string[] {
  const args = jailSystemArgs(mcpLimits(entry));
  args.push('--ro-bind', sourceDir, '/opt/mcp');
  if (workspaceDir)
    args.push(entry.workspace === 'read-only' ? '--ro-bind' : '--bind', workspaceDir, '/workspace');
  const home = workspaceDir ? '/workspace' : '/tmp';
  args.push('--chdir', home, '--remount-ro', '/');
  args.push('--clearenv', '--setenv', 'PATH', '/usr/local/bin:/usr/bin:/bin', '--setenv', 'HOME', home);
  args.push('--setenv', 'LANG', 'C.UTF-8');
  args.push('--setenv', 'NODE_OPTIONS', `--max-old-space-size=${entry.limits.memoryMiB}`);
  for (const [name, value] of Object.entries(entry.env)) args.push('--setenv', name, value);
  args.push('--', ...entry.command);
  return args;
}

export function createJailMcpLauncher(options: JailMcpOptions): McpLauncher {
  const ready = jailHostOf(options.stateDir ?? join(options.workspacesDir, '.jail'));
  return {
    name: 'jail',
    imageOf: (entry) => (entry.sourceLock ? `jail:${entry.sourceLock}` : undefined),
    // A jailed server dies with the executor that started it (bwrap --die-with-parent).
    removeLeftovers: async () => 0,

    async launch({ entry, workspaceId, workspaceSizeBytes }): Promise<LaunchedServer> {
      if (entry.network !== 'none')
        throw new SandboxRefused(
          `server "${entry.id}" needs egress, and the bubblewrap jail has no egress-only network: use the Docker sandbox`,
        );
      const onDisk = await sourceLockOf(options.projectRoot, entry);
      if (!entry.sourceLock || onDisk !== entry.sourceLock)
        throw new SandboxRefused(
          `the files of server "${entry.id}" (${entry.source}) are not the ones pinned in the catalog: review the change with \`countersign mcp pin ${entry.id}\``,
        );
      const host = await ready();
      const workspaceDir =
        entry.workspace === 'none'
          ? undefined
          : await workspaceFolder(
              options.workspacesDir,
              workspaceId,
              host,
              options.disks && { disks: options.disks, sizeBytes: workspaceSizeBytes },
            );
      const sourceDir = join(options.projectRoot, entry.source);
      const sources = workspaceDir ? [sourceDir, workspaceDir] : [sourceDir];
      const limits = mcpLimits(entry);
      const name = `mcp-${randomUUID()}`;
      const argv = jailArgv({
        host,
        name,
        limits,
        sources,
        bwrap: options.bwrapPath ?? 'bwrap',
        bwrapArgs: mcpJailArgs(
          entry,
          stagedPath(host, sources, sourceDir),
          workspaceDir && stagedPath(host, sources, workspaceDir),
        ),
      });
      // The wrapper leads its own process group: it, bwrap and the server go together.
      const child = spawn(argv.file, argv.args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        env: argv.env,
      });
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      exited.catch(() => undefined); // a failed spawn rejects this too; it is reported just below
      const stderr = tailKeeper();
      // V8's "heap out of memory" comes before a long native stack: noticed as it arrives.
      let outOfMemory = false;
      child.stderr.on('data', (chunk: Buffer) => {
        outOfMemory ||= /heap out of memory/i.test(stderr.text().slice(-64) + chunk.toString('utf8'));
        stderr.push(chunk);
      });
      child.stdin.on('error', () => undefined);
      await Promise.race([
        once(child, 'spawn'),
        once(child, 'error').then(([error]) => Promise.reject(error as Error)),
      ]);
      let disposed: Promise<void> | undefined;
      return {
        stdin: child.stdin,
        stdout: child.stdout,
        stderrTail: stderr.text,
        async exit(waitMs) {
          const ended = await Promise.race([
            exited,
            new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), waitMs).unref()),
          ]);
          if (!ended) return undefined;
          const [code, signal] = ended;
          const hit = await limitsHit(host, name, limits);
          const diagnosis = outOfMemory
            ? `ran out of memory (its JavaScript heap limit of ${entry.limits.memoryMiB} MiB)`
            : hit && `was stopped by the jail's limits: ${hit}`;
          return { exitCode: code ?? (signal ? 128 : null), ...(diagnosis ? { diagnosis } : {}) };
        },
        dispose() {
          return (disposed ??= (async () => {
            child.stdin.destroy();
            if (child.exitCode === null && child.signalCode === null) {
              // SIGTERM lets the wrapper empty and remove the server's cgroup; past the grace, all goes.
              const signal = (name: NodeJS.Signals, group: boolean) => {
                try {
                  process.kill(group ? -child.pid! : child.pid!, name);
                } catch {
                  // already gone
                }
              };
              signal('SIGTERM', false);
              const timer = setTimeout(() => signal('SIGKILL', true), STOP_GRACE_MS);
              await exited.catch(() => undefined);
              clearTimeout(timer);
            }
            await rm(reportFile(host, name), { force: true });
          })());
        },
      };
    },
  };
}
