/**
 * A workspace's disk quota: each workspace is a file system of its own, an ext4 image file of the
 * plan's size mounted through a loop device, so a step that fills it gets "No space left on
 * device" and the host's disk is untouched. The image is sparse: it takes the room its files take.
 *
 * Both sandboxes use it: the jail binds the mounted folder, Docker mounts it as the plan's named
 * volume (a bind volume onto the folder). A kept workspace stays mounted after its plan ends; after
 * a reboot the image is mounted again when a step uses it (an ended plan's: `mount -o loop` it).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sizeText, WORKSPACE_SIZE_LIMITS } from '../core/plan/limits.js';
import { SandboxRefused } from './backend.js';

const run = promisify(execFile);

export interface WorkspaceDisk {
  /** The image file, `<disksDir>/<id>.ext4`. */
  image: string;
  /** Where its file system is mounted: what the sandbox binds as /workspace. */
  mountpoint: string;
}

export interface WorkspaceDiskOptions {
  /** Holds the images. */
  disksDir: string;
  /** The folder to mount on (created if missing). */
  mountpoint: string;
  sizeBytes: number;
  /** The owner of the file system's root: the sandbox's user on the host. */
  owner: { uid: number; gid: number };
}

/** Why this host cannot make size-limited workspaces, or undefined when it can. */
export function workspaceDiskUnavailable(): string | undefined {
  if (process.getuid?.() !== 0)
    return 'mounting a size-limited file system per workspace needs the executor to run as root';
  if (!existsSync('/dev/loop-control')) return 'this host has no loop devices (/dev/loop-control)';
  return undefined;
}

/** Whether `dir` is a mount point now (from this process's mount table). */
export async function isMounted(dir: string): Promise<boolean> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point, with spaces and other specials written as octal escapes.
  const escaped = dir.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return table.split('\n').some((line) => line.split(' ')[4] === escaped);
}

async function tool(file: string, args: string[], what: string): Promise<void> {
  try {
    await run(file, args);
  } catch (error) {
    const err = error as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT')
      throw new SandboxRefused(`${file} is not installed, so ${what} is impossible: run scripts/setup`);
    throw new Error(`${what} failed: ${err.stderr?.trim() || err.message}`);
  }
}

/**
 * Makes the workspace's file system if it has none, and mounts it if it is not mounted; returns
 * the mount point. Idempotent, and keeps what the workspace holds. A size already set is kept
 * (the plan's first step decides).
 */
export async function ensureWorkspaceDisk(
  workspaceId: string,
  options: WorkspaceDiskOptions,
): Promise<WorkspaceDisk> {
  const disk = { image: join(options.disksDir, `${workspaceId}.ext4`), mountpoint: options.mountpoint };
  if (await isMounted(disk.mountpoint)) return disk;
  const unavailable = workspaceDiskUnavailable();
  if (unavailable)
    throw new SandboxRefused(
      `the step was not started: its workspace must have a disk quota, and ${unavailable} (COUNTERSIGN_WORKSPACE_SIZE=off runs workspaces without one)`,
    );
  await mkdir(options.disksDir, { recursive: true, mode: 0o700 });
  const fresh = !existsSync(disk.image);
  if (fresh) await makeImage(disk.image, options);
  await mkdir(disk.mountpoint, { recursive: true, mode: 0o700 });
  await tool(
    'mount',
    ['-o', 'loop,nosuid,nodev', disk.image, disk.mountpoint],
    `mounting workspace ${workspaceId}`,
  );
  // mkfs's lost+found is root's: the workspace starts empty (fsck makes it again if it needs one).
  if (fresh) await rmdir(join(disk.mountpoint, 'lost+found')).catch(() => undefined);
  return disk;
}

async function makeImage(image: string, options: WorkspaceDiskOptions): Promise<void> {
  const temp = `${image}.new`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.truncate(options.sizeBytes);
  } finally {
    await handle.close();
  }
  const { uid, gid } = options.owner;
  // No blocks kept back for root: the step's user gets the whole size.
  await tool(
    'mkfs.ext4',
    ['-q', '-F', '-m', '0', '-E', `root_owner=${uid}:${gid},lazy_itable_init=1,lazy_journal_init=1`, temp],
    'making a workspace file system',
  );
  // Renamed only once whole: a crash mid-mkfs leaves a .new file, never a half-made image.
  await rename(temp, image);
}

/** Unmounts the workspace's file system (its files stay in the image), or removes it all. */
export async function releaseWorkspaceDisk(
  workspaceId: string,
  options: Pick<WorkspaceDiskOptions, 'disksDir' | 'mountpoint'>,
  { removeFiles }: { removeFiles: boolean },
): Promise<void> {
  if (await isMounted(options.mountpoint))
    // Lazy: a file held open by a dying process must not keep the plan from ending.
    await tool('umount', ['-l', options.mountpoint], `unmounting workspace ${workspaceId}`);
  if (!removeFiles) return;
  await rm(join(options.disksDir, `${workspaceId}.ext4`), { force: true });
  await rmdir(options.mountpoint).catch(() => undefined);
}

/** How full the workspace is, when it is mounted: for the message of a step that filled it. */
export async function workspaceDiskUse(
  mountpoint: string,
): Promise<{ usedBytes: number; sizeBytes: number } | undefined> {
  if (!(await isMounted(mountpoint))) return undefined;
  const stats = await statfs(mountpoint);
  const sizeBytes = stats.blocks * stats.bsize;
  return { sizeBytes, usedBytes: sizeBytes - stats.bavail * stats.bsize };
}

/** Every mount point at or below `dir` (deepest first), from this process's mount table. */
export async function mountsBelow(dir: string): Promise<string[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const unescape = (text: string) =>
    text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return table
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map(unescape)
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts every workspace file system below `workspacesDir` (a test stack's end; a host's clean-up). */
export async function unmountWorkspaceDisks(workspacesDir: string): Promise<void> {
  for (const point of await mountsBelow(workspacesDir))
    await run('umount', ['-l', point]).catch(() => undefined);
}

const WORKSPACE_ID = /^[A-Za-z0-9._-]{1,200}$/;

/** A workspace's folder on the host, on a file system of its own when quotas are on. */
export interface WorkspaceDisks {
  /** The default size, or undefined when quotas are off (plain folders). */
  readonly defaultSizeBytes: number | undefined;
  /**
   * The workspace's folder (made, and mounted when quotas are on), owned by `owner`. A folder with
   * files and no image was made before quotas: it is kept as it is, without one.
   */
  ensure(workspaceId: string, sizeBytes: number | undefined): Promise<string>;
  /** The plan has ended: a kept workspace stays as it is (mounted); otherwise it is unmounted and removed. */
  release(workspaceId: string, options: { removeFiles: boolean }): Promise<void>;
  /** "it reached its disk quota of 4GiB" when the workspace is full, for a failed step's message. */
  fullness(workspaceId: string): Promise<string | undefined>;
}

export interface WorkspaceDisksOptions {
  workspacesDir: string;
  /** Who owns a fresh workspace's root: the sandbox's user on the host. */
  owner: { uid: number; gid: number };
  /** Bytes per workspace unless the plan says otherwise; undefined turns quotas off. */
  defaultSizeBytes: number | undefined;
}

/** Below this much free room, a failed step is told its workspace is full. */
const FULL_MARGIN_BYTES = 4 * 1024 ** 2;

export function createWorkspaceDisks(options: WorkspaceDisksOptions): WorkspaceDisks {
  const disksDir = join(options.workspacesDir, '.disks');
  const folderOf = (workspaceId: string) => {
    if (!WORKSPACE_ID.test(workspaceId) || workspaceId.startsWith('.'))
      throw new Error(`invalid workspace id "${workspaceId}"`);
    return join(options.workspacesDir, workspaceId);
  };
  // One mount at a time per workspace in this process: parallel steps and MCP calls of one plan
  // ask at once, and two mounts on one folder would hide each other's files.
  const pending = new Map<string, Promise<string>>();

  async function makeReady(workspaceId: string, sizeBytes: number): Promise<string> {
    const folder = folderOf(workspaceId);
    const found = await lstat(folder).catch(() => undefined);
    if (found && !found.isDirectory())
      throw new SandboxRefused(`the workspace ${folder} is not a directory (a link is never followed)`);
    if (found && !(await isMounted(folder)) && !existsSync(join(disksDir, `${workspaceId}.ext4`))) {
      const held = await readdir(folder);
      if (held.length > 0) return folder; // made before quotas: kept as it is
    }
    await ensureWorkspaceDisk(workspaceId, { disksDir, mountpoint: folder, sizeBytes, owner: options.owner });
    return folder;
  }

  return {
    defaultSizeBytes: options.defaultSizeBytes,
    async ensure(workspaceId, sizeBytes) {
      const size = sizeBytes ?? options.defaultSizeBytes;
      if (size === undefined) {
        const folder = folderOf(workspaceId);
        await mkdir(folder, { recursive: true, mode: 0o700 });
        return folder;
      }
      if (size < WORKSPACE_SIZE_LIMITS.min || size > WORKSPACE_SIZE_LIMITS.max)
        throw new SandboxRefused(
          `a workspace is between ${sizeText(WORKSPACE_SIZE_LIMITS.min)} and ${sizeText(WORKSPACE_SIZE_LIMITS.max)}, not ${sizeText(size)}`,
        );
      const before = pending.get(workspaceId);
      const next = (before ?? Promise.resolve('')).catch(() => '').then(() => makeReady(workspaceId, size));
      pending.set(workspaceId, next);
      try {
        return await next;
      } finally {
        if (pending.get(workspaceId) === next) pending.delete(workspaceId);
      }
    },
    async release(workspaceId, { removeFiles }) {
      const folder = folderOf(workspaceId);
      // A kept workspace stays mounted: its files are the plan's record, where people look for them.
      if (!removeFiles) return;
      await releaseWorkspaceDisk(workspaceId, { disksDir, mountpoint: folder }, { removeFiles });
      // fs.rm removes symlinks, never what they point at.
      await rm(folder, { recursive: true, force: true });
    },
    async fullness(workspaceId) {
      const use = await workspaceDiskUse(folderOf(workspaceId)).catch(() => undefined);
      if (!use || use.sizeBytes - use.usedBytes > FULL_MARGIN_BYTES) return undefined;
      const image = await stat(join(disksDir, `${workspaceId}.ext4`)).catch(() => undefined);
      const quota = image ? sizeText(image.size) : `about ${Math.round(use.sizeBytes / 1024 ** 2)} MiB`;
      return `the workspace is full: it reached its disk quota of ${quota} (the plan's workspaceSize sets it)`;
    },
  };
}
