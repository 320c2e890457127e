/**
 * The bubblewrap jail: read-only system, the workspace as the only writable mount, a private
 * network namespace (loopback only), no capabilities, a seccomp filter, no nested user
 * namespaces, a read-only /proc/sys, and on the host an unprivileged user (never root) inside a
 * cgroup of its own that caps memory and processes. See launch.ts for how a step is started.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lchown, lstat, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxRefused, type SandboxBackend, type StepLaunch } from '../backend.js';
import type { WorkspaceDisks } from '../workspace-disk.js';
import type { JailLimits } from './cgroups.js';
import {
  DEFAULT_JAIL_LIMITS,
  jailArgv,
  jailHostOf,
  limitsHit,
  reportFile,
  SECCOMP_FD,
  stagedPath,
  type JailHost,
} from './launch.js';

const ETC_FILES = [
  '/etc/alternatives',
  '/etc/ld.so.cache',
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
  '/etc/ssl/certs',
];
const WORKSPACE = '/workspace';
/** Parts of /proc that change the host's kernel or hardware: read-only inside, as Docker has them. */
const PROC_READ_ONLY = ['/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus', '/proc/fs'];

/**
 * The jail without its workspace: namespaces (no nested user namespaces), uid, read-only system,
 * /proc with its kernel knobs read-only, /dev, a size-capped /tmp and the seccomp program on fd 9.
 */
export function jailSystemArgs(limits: Pick<JailLimits, 'tmpBytes'>): string[] {
  const args = [
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    '--uid',
    '1000',
    '--gid',
    '1000',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--hostname',
    'countersign',
    '--seccomp',
    SECCOMP_FD,
  ];
  args.push('--ro-bind', '/usr', '/usr');
  for (const dir of ['bin', 'lib', 'lib64', 'sbin']) {
    // Merged-/usr systems link these into /usr; others get them bound read-only.
    args.push(
      ...(existsSync(`/usr/${dir}`)
        ? ['--symlink', `usr/${dir}`, `/${dir}`]
        : ['--ro-bind-try', `/${dir}`, `/${dir}`]),
    );
  }
  for (const file of ETC_FILES) args.push('--ro-bind-try', file, file);
  args.push('--proc', '/proc');
  for (const path of PROC_READ_ONLY) args.push('--ro-bind-try', path, path);
  args.push('--dev', '/dev', '--size', String(limits.tmpBytes), '--tmpfs', '/tmp');
  return args;
}

// The step's working directory is made and entered inside the jail: a symlink a step planted in
// the workspace then points into the jail's own view, never at the host's files.
const ENTER_CWD =
  'mkdir -p -- "$1" && cd -- "$1" || { echo "countersign: cannot enter the working directory $1" >&2; exit 126; }; exec /bin/sh -c "$2"';

export function jailArgs(
  command: { workspace: string; cwd: string; env: Record<string, string>; run: string },
  limits: JailLimits,
): string[] {
  const args = jailSystemArgs(limits);
  args.push('--bind', command.workspace, WORKSPACE, '--chdir', WORKSPACE);
  // The jail's own root is a tmpfs; make it read-only too, so only /workspace and /tmp take writes.
  args.push('--remount-ro', '/');
  args.push('--clearenv', '--setenv', 'PATH', '/usr/local/bin:/usr/bin:/bin', '--setenv', 'HOME', WORKSPACE);
  args.push('--setenv', 'TERM', 'xterm-256color', '--setenv', 'LANG', 'C.UTF-8');
  for (const [name, value] of Object.entries(command.env)) args.push('--setenv', name, value);
  args.push('--', '/bin/sh', '-c', ENTER_CWD, '/bin/sh', command.cwd, command.run);
  return args;
}

/**
 * The workspace folder, made if missing (on its own size-limited file system when `disks` is
 * given) and owned by the jail's user. Refuses anything but a real directory there (a symlink is
 * never followed).
 */
export async function workspaceFolder(
  workspacesDir: string,
  workspaceId: string,
  host: JailHost,
  quota?: { disks: WorkspaceDisks; sizeBytes: number | undefined },
): Promise<string> {
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(workspaceId) || workspaceId.startsWith('.'))
    throw new Error(`invalid workspace id "${workspaceId}"`);
  const dir = join(workspacesDir, workspaceId);
  if (quota) await quota.disks.ensure(workspaceId, quota.sizeBytes);
  else await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory()) throw new SandboxRefused(`the workspace ${dir} is not a directory`);
  if (host.user && (info.uid !== host.user.uid || info.gid !== host.user.gid))
    await lchown(dir, host.user.uid, host.user.gid);
  return dir;
}

export interface JailBackendOptions {
  workspacesDir: string;
  bwrapPath?: string;
  /** The jail's own files (its seccomp program, notes of limits hit); default `<workspacesDir>/.jail`. */
  stateDir?: string;
  limits?: Partial<JailLimits>;
  /** Where COUNTERSIGN_JAIL_CGROUP (a delegated cgroup v2 directory) is read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Size-limited workspaces (a file system each, under `workspacesDir`); absent: plain folders. */
  disks?: WorkspaceDisks;
}

export function createJailBackend(options: JailBackendOptions): SandboxBackend {
  const limits: JailLimits = { ...DEFAULT_JAIL_LIMITS, ...options.limits };
  const ready = jailHostOf(options.stateDir ?? join(options.workspacesDir, '.jail'), options.env);
  return {
    name: 'jail',
    async prepareWorkspace(workspaceId, _cwd, { egress, sizeBytes }) {
      if (egress)
        throw new SandboxRefused(
          'this plan asks for egress, and the bubblewrap jail has no egress-only network (its steps see loopback only): run it with the Docker sandbox',
        );
      const quota = options.disks && { disks: options.disks, sizeBytes };
      return workspaceFolder(options.workspacesDir, workspaceId, await ready(), quota);
    },
    // A jailed step leaves nothing running behind; the workspace folder is the plan's record
    // unless the plan said not to keep it. fs.rm removes symlinks, never what they point at.
    async releaseWorkspace(workspaceId, { removeFiles }) {
      if (!/^[A-Za-z0-9._-]{1,200}$/.test(workspaceId) || workspaceId.startsWith('.'))
        throw new Error(`invalid workspace id "${workspaceId}"`);
      if (options.disks) await options.disks.release(workspaceId, { removeFiles });
      else if (removeFiles)
        await rm(join(options.workspacesDir, workspaceId), { recursive: true, force: true });
    },
    async explainFailure(workspaceId, run) {
      const full = await options.disks?.fullness(workspaceId);
      if (full) return full;
      if (!run.runKey) return undefined;
      const hit = await limitsHit(await ready(), run.runKey, limits);
      return hit ? `stopped by the jail's limits: ${hit}` : undefined;
    },
    async releaseStep(execution) {
      await rm(reportFile(await ready(), execution.runKey), { force: true });
    },
    async argvFor(command): Promise<StepLaunch> {
      const host = await ready();
      const sources = [command.workspace];
      const args = jailArgs({ ...command, workspace: stagedPath(host, sources, command.workspace) }, limits);
      return jailArgv({
        host,
        name: command.execution?.runKey ?? randomUUID(),
        limits,
        sources,
        bwrap: options.bwrapPath ?? 'bwrap',
        bwrapArgs: args,
      });
    },
  };
}
