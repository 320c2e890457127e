/**
 * MCP servers in the bubblewrap jail, where no Docker engine exists: the same command as in the
 * image, with the server's files bound read-only at /opt/mcp, no network, and the workspace only
 * when the catalog entry asks for it. Without cgroups, memory is bounded by Node's heap limit.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { McpServerEntry } from '../../core/mcp/catalog.js';
import { SandboxRefused } from '../backend.js';
import { jailSystemArgs } from '../jail/jail-backend.js';
import { sourceLockOf } from './catalog-store.js';
import { tailKeeper, type LaunchedServer, type McpLauncher } from './launcher.js';

export interface JailMcpOptions {
  projectRoot: string;
  workspacesDir: string;
  bwrapPath?: string;
}

export function mcpJailArgs(
  entry: McpServerEntry,
  sourceDir: string,
  workspaceDir: string | undefined,
): string[] {
  const args = jailSystemArgs();
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
  return {
    name: 'jail',
    imageOf: (entry) => (entry.sourceLock ? `jail:${entry.sourceLock}` : undefined),
    // A jailed server dies with the executor that started it (bwrap --die-with-parent).
    removeLeftovers: async () => 0,

    async launch({ entry, workspaceId }): Promise<LaunchedServer> {
      if (entry.network !== 'none')
        throw new SandboxRefused(
          `server "${entry.id}" needs egress, and the bubblewrap jail has no egress-only network: use the Docker sandbox`,
        );
      const onDisk = await sourceLockOf(options.projectRoot, entry);
      if (!entry.sourceLock || onDisk !== entry.sourceLock)
        throw new SandboxRefused(
          `the files of server "${entry.id}" (${entry.source}) are not the ones pinned in the catalog: review the change with \`countersign mcp pin ${entry.id}\``,
        );
      let workspaceDir: string | undefined;
      if (entry.workspace !== 'none') {
        if (!/^[A-Za-z0-9._-]{1,200}$/.test(workspaceId) || workspaceId.startsWith('.'))
          throw new Error(`invalid workspace id "${workspaceId}"`);
        workspaceDir = join(options.workspacesDir, workspaceId);
        await mkdir(workspaceDir, { recursive: true, mode: 0o700 });
      }
      const child = spawn(
        options.bwrapPath ?? 'bwrap',
        mcpJailArgs(entry, join(options.projectRoot, entry.source), workspaceDir),
        { stdio: ['pipe', 'pipe', 'pipe'], detached: true },
      );
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
          return {
            exitCode: code ?? (signal ? 128 : null),
            ...(outOfMemory
              ? {
                  diagnosis: `ran out of memory (its JavaScript heap limit of ${entry.limits.memoryMiB} MiB)`,
                }
              : {}),
          };
        },
        dispose() {
          return (disposed ??= (async () => {
            child.stdin.destroy();
            if (child.exitCode === null && child.signalCode === null) {
              try {
                process.kill(-child.pid!, 'SIGKILL');
              } catch {
                // already gone
              }
              await exited;
            }
          })());
        },
      };
    },
  };
}
