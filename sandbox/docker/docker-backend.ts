/**
 * The Docker backend: one hardened workspace container per plan (created through the broker,
 * with the plan's named volume as its only writable mount), and each shell step run in it with
 * `docker exec` under the runner's PTY, so a step still outlives an executor crash.
 */
import { SandboxRefused, type SandboxBackend, type WorkspaceOptions } from '../backend.js';
import type { DockerBroker } from './broker.js';
import { DEFAULT_LIMITS } from './container-policy.js';

export const WORKSPACE_IMAGE = 'countersign/workspace:latest';
const IN_CONTAINER_GRACE_SECONDS = 3;

export function workspaceVolumeName(workspaceId: string): string {
  return `countersign-ws-${workspaceId}`;
}

export function createDockerBackend(options: { broker: DockerBroker; dockerCli?: string }): SandboxBackend {
  const { broker } = options;
  // One creation at a time per workspace: parallel steps of a plan share its container.
  const pending = new Map<string, Promise<string>>();

  async function workspaceContainer(workspaceId: string, { egress }: WorkspaceOptions): Promise<string> {
    const network = egress ? 'egress' : 'none';
    const existing = await broker.findWorkspace(workspaceId);
    if (existing && existing.network !== network)
      throw new SandboxRefused(
        `workspace ${workspaceId} runs with network "${existing.network}", and this step was approved for "${network}"`,
      );
    if (existing?.running) return existing.id;
    if (existing) await broker.remove(existing.id);
    const { id } = await broker.run({
      image: WORKSPACE_IMAGE,
      owner: { plan: workspaceId },
      workspaceVolume: workspaceVolumeName(workspaceId),
      network,
    });
    return id;
  }

  return {
    name: 'docker',
    reap: (open, createdBeforeMs) => broker.reap(open, createdBeforeMs),
    async explainFailure(workspaceId, run) {
      const found = await broker.findWorkspace(workspaceId).catch(() => null);
      if (found === null)
        return 'the Docker engine did not answer when the step ended (was it restarting?); the step is not run again';
      if (!found)
        return "the workspace container disappeared while the step ran; the step is not run again, and the plan's files stay in its volume";
      const state = (await broker.inspect(found.id)).State;
      if (!state.Running || Date.parse(state.StartedAt) > run.startedAtMs)
        return 'the workspace container stopped while the step ran (was the Docker engine restarted?); the step is not run again, and the next step gets a fresh container on the same volume';
      const killed = run.exitCode === 137 || run.signal === 'SIGKILL';
      const kills = killed ? await broker.oomKills(found.id) : undefined;
      if (!kills) return undefined;
      return `killed by the out-of-memory killer: the workspace container reached its memory limit of ${Math.round(DEFAULT_LIMITS.memoryBytes / 1024 ** 2)} MiB (${kills} such kill${kills > 1 ? 's' : ''} in this workspace so far)`;
    },
    async prepareWorkspace(workspaceId, _cwd, options) {
      if (!/^[A-Za-z0-9._-]{1,180}$/.test(workspaceId) || workspaceId.startsWith('.'))
        throw new Error(`invalid workspace id "${workspaceId}"`);
      let creation = pending.get(workspaceId);
      if (!creation) {
        creation = workspaceContainer(workspaceId, options).finally(() => pending.delete(workspaceId));
        pending.set(workspaceId, creation);
      }
      return creation;
    },
    // The container goes; the named volume with the plan's files stays unless the plan said not to.
    async releaseWorkspace(workspaceId, { removeFiles }) {
      const found = await broker.findWorkspace(workspaceId);
      if (found) await broker.remove(found.id);
      if (removeFiles) await broker.removeWorkspaceVolume(workspaceVolumeName(workspaceId));
    },
    argvFor(command) {
      const env = Object.entries(command.env).flatMap(([name, value]) => ['-e', `${name}=${value}`]);
      // The command and directory travel as variables, so nothing is re-quoted into a shell line.
      // Killing `docker exec` leaves its process running in the container, so the time limit is
      // enforced in there too, a little after the runner's own stop.
      const limitSeconds = Math.ceil(command.timeoutMs / 1000) + IN_CONTAINER_GRACE_SECONDS;
      const script = `mkdir -p -- "$COUNTERSIGN_CWD" && cd -- "$COUNTERSIGN_CWD" && exec timeout -k 2 ${limitSeconds} /bin/sh -c "$COUNTERSIGN_RUN"`;
      return {
        file: options.dockerCli ?? 'docker',
        // The docker client's own environment; nothing of it reaches the container.
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp' },
        args: [
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
