/**
 * Every workspace has a disk quota (issue 15): its own ext4 file system of the plan's
 * `workspaceSize` (or the executor's default), so a step that writes 2 GiB fills its workspace,
 * not the host, and fails saying so. Real plans, real loop mounts, in the jail and in Docker.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWorkspaceDisks,
  isMounted,
  unmountWorkspaceDisks,
  workspaceDiskUnavailable,
} from '../sandbox/workspace-disk.js';
import { readWorkspaceFile, removeDockerLeftovers } from './support/docker.js';
import { runApproved, stepOf } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

const MiB = 1024 ** 2;
const GiB = 1024 * MiB;
// 2 GiB from one step, as the finding had it; the quota stops it at 64 MiB.
const FLOOD = 'dd if=/dev/zero of=flood bs=1M count=2048 status=none';

/** Bytes the workspace image takes on the host disk (it is sparse: what was written, and ext4's own). */
const imageBytesOnDisk = async (stack: TestStack, workspaceId: string) =>
  (await stat(join(stack.paths.workspaces, '.disks', `${workspaceId}.ext4`))).blocks * 512;

describe('workspace disk quotas', () => {
  it('can be made on this machine (root, loop devices): the executor refuses steps otherwise', () => {
    expect(workspaceDiskUnavailable()).toBeUndefined();
  });

  describe('in the jail', () => {
    let stack: TestStack;
    beforeAll(async () => {
      stack = await startTestStack('quota-jail', { backend: 'jail' });
    });
    afterAll(async () => {
      await stack?.close();
    });

    it('stops a 2 GiB write at the plan’s 64 MiB and says the workspace is full; the host keeps its disk', async () => {
      const view = await runApproved(stack.client, stack.root, {
        name: 'flood the workspace',
        workspaceSize: '64MiB',
        steps: [{ id: 'flood', run: FLOOD }],
      });
      const flood = stepOf(view, 'flood');
      expect(flood.status).toBe('failed');
      expect(flood.result?.outputTail).toMatch(/No space left on device/);
      expect(flood.error).toMatch(/the workspace is full: it reached its disk quota of 64MiB/);
      const folder = join(stack.paths.workspaces, view.workspaceId);
      expect(await isMounted(folder)).toBe(true);
      expect((await stat(join(folder, 'flood'))).size).toBeLessThan(64 * MiB);
      expect(await imageBytesOnDisk(stack, view.workspaceId)).toBeLessThan(80 * MiB);
    });

    it('gives a plan without workspaceSize the default 4 GiB file system, and a kept workspace stays readable after its plan', async () => {
      const view = await runApproved(stack.client, stack.root, {
        name: 'default size',
        steps: [{ id: 'write', run: 'echo kept > note && df -k . | tail -n 1' }],
      });
      expect(stepOf(view, 'write').status).toBe('succeeded');
      const folder = join(stack.paths.workspaces, view.workspaceId);
      const fs = await statfs(folder);
      // A 4 GiB image; ext4 keeps a little of it for its own structures.
      expect((await stat(join(stack.paths.workspaces, '.disks', `${view.workspaceId}.ext4`))).size).toBe(
        4 * GiB,
      );
      expect(fs.blocks * fs.bsize).toBeGreaterThan(3.8 * GiB);
      expect(fs.blocks * fs.bsize).toBeLessThanOrEqual(4 * GiB);
      expect(await readFile(join(folder, 'note'), 'utf8')).toBe('kept\n');
    });

    it('unmounts and removes a workspace the plan did not keep', async () => {
      const view = await runApproved(stack.client, stack.root, {
        name: 'not kept',
        keepWorkspace: false,
        workspaceSize: '32MiB',
        steps: [{ id: 'write', run: 'echo gone > note' }],
      });
      expect(stepOf(view, 'write').status).toBe('succeeded');
      const folder = join(stack.paths.workspaces, view.workspaceId);
      // The release runs as the plan closes; give it a moment.
      for (let i = 0; i < 50 && (await isMounted(folder)); i++) await new Promise((r) => setTimeout(r, 100));
      expect(await isMounted(folder)).toBe(false);
      await expect(stat(join(stack.paths.workspaces, '.disks', `${view.workspaceId}.ext4`))).rejects.toThrow(
        /ENOENT/,
      );
    });
  });

  describe('in Docker', () => {
    let stack: TestStack;
    const plans: string[] = [];
    beforeAll(async () => {
      stack = await startTestStack('quota-docker', { backend: 'docker' });
    });
    afterAll(async () => {
      await removeDockerLeftovers(plans);
      await stack?.close();
    });

    it('stops a 2 GiB write at the plan’s 64 MiB in the plan’s volume and says the workspace is full', async () => {
      const view = await runApproved(
        stack.client,
        stack.root,
        {
          name: 'flood the volume',
          workspaceSize: '64MiB',
          steps: [
            { id: 'note', run: 'echo before > note' },
            { id: 'flood', run: FLOOD },
          ],
        },
        plans,
      );
      const flood = stepOf(view, 'flood');
      expect(flood.status).toBe('failed');
      expect(flood.result?.outputTail).toMatch(/No space left on device/);
      expect(flood.error).toMatch(/the workspace is full: it reached its disk quota of 64MiB/);
      // The volume is the workspace's own file system: what the first step wrote is there, and
      // the host holds no more than the quota.
      expect(await readWorkspaceFile(view.workspaceId, 'note')).toBe('before\n');
      expect(await imageBytesOnDisk(stack, view.workspaceId)).toBeLessThan(80 * MiB);
    });
  });

  describe('the disks themselves', () => {
    const dir = `/tmp/countersign-quota-${process.pid}`;
    afterAll(async () => {
      await unmountWorkspaceDisks(dir);
      await rm(dir, { recursive: true, force: true });
    });

    it('keeps a workspace folder made before quotas as it is (no mount over its files)', async () => {
      const disks = createWorkspaceDisks({
        workspacesDir: dir,
        owner: { uid: 1000, gid: 1000 },
        defaultSizeBytes: 64 * MiB,
      });
      await mkdir(join(dir, 'old-plan'), { recursive: true });
      await writeFile(join(dir, 'old-plan', 'work'), 'from before');
      expect(await disks.ensure('old-plan', undefined)).toBe(join(dir, 'old-plan'));
      expect(await isMounted(join(dir, 'old-plan'))).toBe(false);
    });

    it('mounts once when parallel steps of a plan ask at the same time, owned by the sandbox user', async () => {
      const disks = createWorkspaceDisks({
        workspacesDir: dir,
        owner: { uid: 1000, gid: 1000 },
        defaultSizeBytes: 64 * MiB,
      });
      await Promise.all(Array.from({ length: 6 }, () => disks.ensure('parallel', undefined)));
      const { stdout } = await promisify(execFile)('findmnt', ['-n', '-o', 'TARGET', join(dir, 'parallel')]);
      expect(stdout.trim().split('\n')).toHaveLength(1);
      expect((await stat(join(dir, 'parallel'))).uid).toBe(1000);
    });

    it('refuses sizes outside 16 MiB … 1 TiB, and ids that leave the folder', async () => {
      const disks = createWorkspaceDisks({
        workspacesDir: dir,
        owner: { uid: 1000, gid: 1000 },
        defaultSizeBytes: 64 * MiB,
      });
      await expect(disks.ensure('tiny', 1 * MiB)).rejects.toThrow(/between 16MiB and 1TiB, not 1MiB/);
      await expect(disks.ensure('../escape', undefined)).rejects.toThrow(/invalid workspace id/);
    });
  });
});
