/** Cleaning up after Docker tests: the containers and volumes of the given plans and their sub-plans. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { LABELS } from '../../sandbox/docker/container-policy.js';
import { WORKSPACE_IMAGE, workspaceVolumeName } from '../../sandbox/docker/docker-backend.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

const ofPlans = (planIds: readonly string[]) => (name: string) =>
  planIds.some((id) => name === id || name.startsWith(`${id}.`));

/** Every managed container whose plan label belongs to one of `planIds` (sub-plans included). */
export async function containersOf(planIds: readonly string[]): Promise<Docker.ContainerInfo[]> {
  const all = await docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`] } });
  return all.filter((c) => ofPlans(planIds)(c.Labels[LABELS.plan] ?? ''));
}

export async function removeDockerLeftovers(planIds: readonly string[]): Promise<void> {
  for (const c of await containersOf(planIds)) await docker.getContainer(c.Id).remove({ force: true });
  const { Volumes } = await docker.listVolumes();
  const prefix = workspaceVolumeName('');
  for (const volume of Volumes ?? []) {
    if (volume.Name.startsWith(prefix) && ofPlans(planIds)(volume.Name.slice(prefix.length)))
      await docker
        .getVolume(volume.Name)
        .remove({ force: true })
        .catch(() => undefined);
  }
}

/** A file from a plan's workspace volume, read by a throwaway container with no network. */
export async function readWorkspaceFile(workspaceId: string, path: string): Promise<string> {
  const { stdout } = await promisify(execFile)('docker', [
    'run',
    '--rm',
    '--network',
    'none',
    '-v',
    `${workspaceVolumeName(workspaceId)}:/workspace:ro`,
    WORKSPACE_IMAGE,
    'cat',
    `/workspace/${path}`,
  ]);
  return stdout;
}
