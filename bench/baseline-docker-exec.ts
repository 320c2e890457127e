/**
 * The Docker backend as it was before every step got a container of its own (issue 15), kept only
 * as the baseline of bench/step-isolation.ts: one hardened workspace container per plan (made
 * through the broker on the plan's first step), each step run in it with `docker exec` under the
 * runner's PTY. Steps share its processes, its /tmp and each other's environment: never use it to
 * run plans.
 */
import type { SandboxBackend } from '../sandbox/backend.js';
import type { DockerBroker } from '../sandbox/docker/broker.js';
import { WORKSPACE_IMAGE, workspaceVolumeName } from '../sandbox/docker/docker-backend.js';

const IN_CONTAINER_GRACE_SECONDS = 3;

export function createBaselineDockerExecBackend(options: {
  broker: DockerBroker;
  /** The Docker CLI's configuration folder (the product's is private; so is this one). */
  clientDir: string;
}): SandboxBackend {
  const { broker } = options;
  const pending = new Map<string, Promise<string>>();

  async function workspaceContainer(workspaceId: string, egress: boolean): Promise<string> {
    const [existing] = await broker.planContainers(workspaceId);
    if (existing?.running) return existing.id;
    if (existing) await broker.remove(existing.id);
    const { id } = await broker.run({
      image: WORKSPACE_IMAGE,
      owner: { plan: workspaceId },
      workspaceVolume: workspaceVolumeName(workspaceId),
      network: egress ? 'egress' : 'none',
    });
    return id;
  }

  return {
    name: 'docker',
    async prepareWorkspace(workspaceId, _cwd, { egress }) {
      let creation = pending.get(workspaceId);
      if (!creation) {
        creation = workspaceContainer(workspaceId, egress).finally(() => pending.delete(workspaceId));
        pending.set(workspaceId, creation);
      }
      return creation;
    },
    async releaseWorkspace(workspaceId, { removeFiles }) {
      for (const container of await broker.planContainers(workspaceId)) await broker.remove(container.id);
      if (removeFiles) await broker.removeWorkspaceVolume(workspaceVolumeName(workspaceId));
    },
    argvFor(command) {
      const env = Object.entries(command.env).flatMap(([name, value]) => ['-e', `${name}=${value}`]);
      const limitSeconds = Math.ceil(command.timeoutMs / 1000) + IN_CONTAINER_GRACE_SECONDS;
      const script = `mkdir -p -- "$COUNTERSIGN_CWD" && cd -- "$COUNTERSIGN_CWD" && exec timeout -k 2 ${limitSeconds} /bin/sh -c "$COUNTERSIGN_RUN"`;
      return {
        file: 'docker',
        env: {
          PATH: '/usr/local/bin:/usr/bin:/bin',
          HOME: options.clientDir,
          DOCKER_CONFIG: options.clientDir,
        },
        args: [
          '-H',
          `unix://${broker.socketPath}`,
          'exec',
          '-i',
          '-t',
          '-w',
          '/workspace',
          ...env,
          '-e',
          `COUNTERSIGN_CWD=${command.cwd}`,
          '-e',
          `COUNTERSIGN_RUN=${command.run}`,
          command.workspace,
          '/bin/sh',
          '-c',
          script,
        ],
      };
    },
  };
}
