/**
 * The bubblewrap jail: read-only system, the workspace as the only writable mount, a private
 * network namespace (loopback only), no capabilities, an unprivileged uid, a clean environment.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxRefused, type SandboxBackend, type SandboxCommand } from '../backend.js';

const ETC_FILES = [
  '/etc/alternatives',
  '/etc/ld.so.cache',
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
  '/etc/ssl/certs',
];
const WORKSPACE = '/workspace';

/** The jail without its workspace: namespaces, uid, read-only system, /proc, /dev and a private /tmp. */
export function jailSystemArgs(): string[] {
  const args = [
    '--unshare-all',
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
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  return args;
}

export function jailArgs(command: SandboxCommand): string[] {
  const args = jailSystemArgs();
  args.push('--bind', command.workspace, WORKSPACE, '--chdir', join(WORKSPACE, command.cwd));
  // The jail's own root is a tmpfs; make it read-only too, so only /workspace and /tmp take writes.
  args.push('--remount-ro', '/');
  args.push('--clearenv', '--setenv', 'PATH', '/usr/local/bin:/usr/bin:/bin', '--setenv', 'HOME', WORKSPACE);
  args.push('--setenv', 'TERM', 'xterm-256color', '--setenv', 'LANG', 'C.UTF-8');
  for (const [name, value] of Object.entries(command.env)) args.push('--setenv', name, value);
  args.push('--', '/bin/sh', '-c', command.run);
  return args;
}

export function createJailBackend(options: { workspacesDir: string; bwrapPath?: string }): SandboxBackend {
  const workspaceDir = (workspaceId: string) => {
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(workspaceId) || workspaceId.startsWith('.'))
      throw new Error(`invalid workspace id "${workspaceId}"`);
    return join(options.workspacesDir, workspaceId);
  };
  return {
    name: 'jail',
    async prepareWorkspace(workspaceId, cwd, { egress }) {
      if (egress)
        throw new SandboxRefused(
          'this plan asks for egress, and the bubblewrap jail has no egress-only network (its steps see loopback only): run it with the Docker sandbox',
        );
      const dir = workspaceDir(workspaceId);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // bwrap needs the working directory to exist before it can chdir into it.
      await mkdir(join(dir, cwd), { recursive: true });
      return dir;
    },
    // A jailed step leaves nothing running behind; the workspace folder is the plan's record
    // unless the plan said not to keep it.
    async releaseWorkspace(workspaceId, { removeFiles }) {
      if (removeFiles) await rm(workspaceDir(workspaceId), { recursive: true, force: true });
    },
    argvFor(command) {
      return { file: options.bwrapPath ?? 'bwrap', args: jailArgs(command) };
    },
  };
}
