/**
 * What a workspace's disk quota costs (issue 15): making and mounting a workspace's own file
 * system (what the first step of a plan pays), and writing 1 GiB into it with an fsync, beside
 * the same write into a plain folder on the host's file system (the baseline), interleaved in one
 * run. Also what releasing a workspace that is not kept costs. Needs root and loop devices.
 *
 *   npm run bench:quota [-- --rounds 8 --mounts 30]
 */
import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import {
  createWorkspaceDisks,
  unmountWorkspaceDisks,
  workspaceDiskUnavailable,
} from '../sandbox/workspace-disk.js';
import { line } from './stats.js';

const run = promisify(execFile);
const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '8' }, mounts: { type: 'string', default: '30' } },
});
const rounds = Number(values.rounds);
const mounts = Number(values.mounts);
const GiB = 1024 ** 3;

const unavailable = workspaceDiskUnavailable();
if (unavailable) {
  console.error(`bench:quota cannot run here: ${unavailable}`);
  process.exit(1);
}

// On the disk the state folder lives on (not /tmp, which may be memory).
const dir = join(process.cwd(), '.countersign', 'bench-quota');
await rm(dir, { recursive: true, force: true });
await mkdir(dir, { recursive: true });
const disks = createWorkspaceDisks({
  workspacesDir: dir,
  owner: { uid: 1000, gid: 1000 },
  defaultSizeBytes: 4 * GiB,
});

/** Seconds to write 1 GiB of zeros into `folder` and fsync it; the file is removed after. */
async function writeGiB(folder: string): Promise<number> {
  const file = join(folder, 'gib');
  const started = performance.now();
  await run('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', 'count=1024', 'conv=fsync', 'status=none']);
  const seconds = (performance.now() - started) / 1000;
  await rm(file);
  return seconds;
}

try {
  const made: number[] = [];
  const released: number[] = [];
  for (let i = 0; i < mounts; i++) {
    const started = performance.now();
    await disks.ensure(`mount-${i}`, undefined);
    made.push(performance.now() - started);
  }
  const again: number[] = [];
  for (let i = 0; i < mounts; i++) {
    const started = performance.now();
    await disks.ensure(`mount-${i}`, undefined);
    again.push(performance.now() - started);
  }
  for (let i = 0; i < mounts; i++) {
    const started = performance.now();
    await disks.release(`mount-${i}`, { removeFiles: true });
    released.push(performance.now() - started);
  }

  const quota = await disks.ensure('writes', undefined);
  const plain = join(dir, 'plain');
  await mkdir(plain, { recursive: true });
  const onQuota: number[] = [];
  const onPlain: number[] = [];
  // Interleaved, so the host's page cache and disk see both alike.
  for (let i = 0; i < rounds; i++) {
    onPlain.push(await writeGiB(plain));
    onQuota.push(await writeGiB(quota));
  }
  const mbps = (seconds: number[]) => seconds.map((s) => 1024 / s);

  console.log(
    `workspace disk quota (4 GiB ext4 image, loop-mounted), ${mounts} workspaces, ${rounds} rounds of 1 GiB`,
  );
  console.log(line('first use: make the file system and mount it', made));
  console.log(line('later steps: already mounted', again));
  console.log(line('release (not kept): unmount and remove', released));
  console.log(
    line(
      '1 GiB write + fsync, plain folder (baseline)',
      onPlain.map((s) => s * 1000),
    ),
  );
  console.log(
    line(
      '1 GiB write + fsync, quota file system',
      onQuota.map((s) => s * 1000),
    ),
  );
  console.log(line('throughput, plain folder (baseline)', mbps(onPlain), ' MiB/s'));
  console.log(line('throughput, quota file system', mbps(onQuota), ' MiB/s'));
} finally {
  await unmountWorkspaceDisks(dir);
  await rm(dir, { recursive: true, force: true });
}
