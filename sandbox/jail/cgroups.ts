/**
 * Memory and process limits for jailed steps: each step (or MCP server) gets a cgroup of its own,
 * made and joined by the jail's wrapper before bwrap starts and emptied and removed after it ends.
 *
 * Where the cgroups live:
 * - cgroup v2 with the memory and pids controllers: `COUNTERSIGN_JAIL_CGROUP` (a delegated
 *   directory this process may write) or, as root, `<cgroup2 mount>/countersign`;
 * - cgroup v1 (root only): `countersign/` in the memory and in the pids hierarchy.
 * A host offering neither gets a refusal that says what is missing.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface JailLimits {
  memoryBytes: number;
  pids: number;
  /** The size of the jail's /tmp (a tmpfs, charged to the step's memory too). */
  tmpBytes: number;
}

/** What the wrapper does for one step: made, limited, joined; what it reads before removing them. */
export interface StepCgroups {
  dirs: string[];
  /** `[file, value, optional]`: written in order; an optional one may be missing on this kernel. */
  limits: [string, string, boolean][];
  /** Counters read when the step ends: `oom_kill` (processes the OOM killer took) and `pids_max` (forks refused). */
  events: { name: 'oom_kill' | 'pids_max'; file: string; key: string }[];
}

export interface CgroupHost {
  /** E.g. "cgroup v2 at /sys/fs/cgroup/countersign". */
  readonly description: string;
  forStep(name: string, limits: JailLimits): StepCgroups;
  /** Removes step cgroups left empty by a wrapper that was killed (older than a minute). */
  sweep(): Promise<void>;
}

interface Mount {
  fstype: string;
  mountpoint: string;
  root: string;
  superOptions: string[];
}

const unescape = (field: string) =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

async function cgroupMounts(): Promise<Mount[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const mounts: Mount[] = [];
  for (const line of table.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const fields = left.split(' ');
    const [fstype, , superOptions] = right.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    mounts.push({
      fstype,
      root: unescape(fields[3] ?? ''),
      mountpoint: unescape(fields[4] ?? ''),
      superOptions: (superOptions ?? '').split(','),
    });
  }
  return mounts;
}

const controllersOf = async (dir: string) =>
  (await readFile(join(dir, 'cgroup.controllers'), 'utf8').catch(() => '')).trim().split(/\s+/);

async function enableControllers(dir: string): Promise<void> {
  const enabled = (await readFile(join(dir, 'cgroup.subtree_control'), 'utf8')).trim().split(/\s+/);
  const missing = ['memory', 'pids'].filter((c) => !enabled.includes(c));
  if (missing.length)
    await writeFile(join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
}

const STEP_PREFIX = 'step-';
const SWEEP_AGE_MS = 60_000;

async function sweepDir(base: string): Promise<void> {
  for (const entry of await readdir(base).catch(() => [] as string[])) {
    if (!entry.startsWith(STEP_PREFIX)) continue;
    const dir = join(base, entry);
    const info = await stat(dir).catch(() => undefined);
    // rmdir refuses a cgroup with processes in it: only empty leftovers go.
    if (info && Date.now() - info.mtimeMs > SWEEP_AGE_MS) await rmdir(dir).catch(() => undefined);
  }
}

/** Makes a cgroup, writes limits into it and removes it again: proves the wrapper will be able to. */
async function probe(dirs: string[], limits: [string, string, boolean][]): Promise<void> {
  try {
    for (const dir of dirs) await mkdir(dir);
    for (const [file, value, optional] of limits)
      await writeFile(file, value).catch((error: unknown) => {
        if (!optional) throw error;
      });
  } finally {
    for (const dir of dirs) await rmdir(dir).catch(() => undefined);
  }
}

function v2Host(base: string): CgroupHost {
  return {
    description: `cgroup v2 at ${base}`,
    forStep(name, limits) {
      const dir = join(base, `${STEP_PREFIX}${name}`);
      return {
        dirs: [dir],
        limits: [
          [join(dir, 'memory.max'), String(limits.memoryBytes), false],
          [join(dir, 'memory.swap.max'), '0', true],
          [join(dir, 'pids.max'), String(limits.pids), false],
        ],
        events: [
          { name: 'oom_kill', file: join(dir, 'memory.events'), key: 'oom_kill' },
          { name: 'pids_max', file: join(dir, 'pids.events'), key: 'max' },
        ],
      };
    },
    sweep: () => sweepDir(base),
  };
}

function v1Host(memoryBase: string, pidsBase: string): CgroupHost {
  return {
    description: `cgroup v1 at ${memoryBase} and ${pidsBase}`,
    forStep(name, limits) {
      const memory = join(memoryBase, `${STEP_PREFIX}${name}`);
      const pids = join(pidsBase, `${STEP_PREFIX}${name}`);
      return {
        dirs: [memory, pids],
        limits: [
          [join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes), false],
          // Memory plus swap, the same: no swapping past the limit (missing without swap accounting).
          [join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes), true],
          [join(pids, 'pids.max'), String(limits.pids), false],
        ],
        events: [
          { name: 'oom_kill', file: join(memory, 'memory.oom_control'), key: 'oom_kill' },
          { name: 'pids_max', file: join(pids, 'pids.events'), key: 'max' },
        ],
      };
    },
    sweep: async () => {
      await sweepDir(memoryBase);
      await sweepDir(pidsBase);
    },
  };
}

/** Settles where this host's jailed steps get their cgroups, or says why it cannot limit them. */
export async function findCgroupHost(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ host: CgroupHost } | { refused: string }> {
  const isRoot = process.getuid?.() === 0;
  const reasons: string[] = [];
  const probeLimits: JailLimits = { memoryBytes: 64 * 1024 ** 2, pids: 16, tmpBytes: 0 };
  const tryHost = async (host: CgroupHost, prepare: () => Promise<void>) => {
    try {
      await prepare();
      const step = host.forStep(`probe-${process.pid}`, probeLimits);
      await probe(step.dirs, step.limits);
      return host;
    } catch (error) {
      reasons.push(`${host.description}: ${(error as Error).message}`);
      return undefined;
    }
  };

  const delegated = env.COUNTERSIGN_JAIL_CGROUP;
  if (delegated) {
    const controllers = await controllersOf(delegated);
    if (!controllers.includes('memory') || !controllers.includes('pids'))
      return {
        refused: `COUNTERSIGN_JAIL_CGROUP=${delegated} is not a cgroup v2 directory with the memory and pids controllers (it has: ${controllers.join(' ') || 'none'})`,
      };
    const host = await tryHost(v2Host(delegated), () => enableControllers(delegated));
    return host ? { host } : { refused: reasons.join('; ') };
  }

  const mounts = await cgroupMounts();
  for (const mount of mounts.filter((m) => m.fstype === 'cgroup2' && m.root === '/')) {
    const controllers = await controllersOf(mount.mountpoint);
    if (!controllers.includes('memory') || !controllers.includes('pids')) {
      reasons.push(
        `cgroup v2 at ${mount.mountpoint} has no memory and pids controllers (it has: ${controllers.filter(Boolean).join(' ') || 'none'})`,
      );
      continue;
    }
    if (!isRoot) {
      reasons.push(
        `cgroup v2 at ${mount.mountpoint} needs root, or a delegated directory named by COUNTERSIGN_JAIL_CGROUP`,
      );
      continue;
    }
    const base = join(mount.mountpoint, 'countersign');
    const host = await tryHost(v2Host(base), async () => {
      await enableControllers(mount.mountpoint);
      await mkdir(base, { recursive: true });
      await enableControllers(base);
    });
    if (host) return { host };
  }

  const v1 = (controller: string) =>
    mounts.find((m) => m.fstype === 'cgroup' && m.root === '/' && m.superOptions.includes(controller));
  const memory = v1('memory');
  const pids = v1('pids');
  if (memory && pids) {
    if (!isRoot) reasons.push('cgroup v1 hierarchies can be written by root only');
    else {
      const memoryBase = join(memory.mountpoint, 'countersign');
      const pidsBase = join(pids.mountpoint, 'countersign');
      const host = await tryHost(v1Host(memoryBase, pidsBase), async () => {
        await mkdir(memoryBase, { recursive: true });
        await mkdir(pidsBase, { recursive: true });
        // Children are counted against their parent's limits too (on by default on current kernels).
        const hierarchy = join(memoryBase, 'memory.use_hierarchy');
        if (existsSync(hierarchy) && (await readFile(hierarchy, 'utf8')).trim() !== '1')
          await writeFile(hierarchy, '1').catch(() => undefined);
      });
      if (host) return { host };
    }
  } else if (memory || pids) {
    reasons.push(
      `cgroup v1 has a ${memory ? 'memory' : 'pids'} hierarchy but no ${memory ? 'pids' : 'memory'} one`,
    );
  }
  if (!mounts.length) reasons.push('no cgroup file system is mounted');
  return { refused: reasons.join('; ') };
}
