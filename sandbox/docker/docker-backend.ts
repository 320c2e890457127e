/**
 * The Docker backend: every shell step runs in a hardened container of its own over the plan's
 * workspace volume (created through the broker, with the step's own environment and a fresh
 * /tmp), which the runner starts with its PTY attached (`docker start -ai`), so a step still
 * outlives an executor crash. When the step's command ends, the container's init ends, and the
 * kernel kills whatever else of the step still runs (daemons, setsid children, fork bombs); at
 * the time limit or on a stop, the runner stops the container, and the step's result is written
 * only once it has stopped. The container goes once the step's result is kept.
 */
import { chmod, lstat, mkdir } from 'node:fs/promises';
import { SandboxRefused, type SandboxBackend, type StepExecution, type StepLaunch } from '../backend.js';
import type { WorkspaceDisks } from '../workspace-disk.js';
import type { DockerBroker } from './broker.js';
import { DEFAULT_LIMITS } from './container-policy.js';

export const WORKSPACE_IMAGE = 'countersign/workspace:latest';
const IN_CONTAINER_GRACE_SECONDS = 3;
/** Seconds between SIGTERM and SIGKILL when the runner stops a step's container. */
const STOP_GRACE_SECONDS = 2;

// The container's command. The working directory and the command line arrive as arguments, so
// nothing is re-quoted into a shell line; the time limit holds in there too (a little after the
// runner's own stop), should the runner be gone. `--foreground` keeps the step in the terminal's
// foreground process group; its children die with the container anyway.
const STEP_SCRIPT = 'mkdir -p -- "$1" && cd -- "$1" && exec timeout --foreground -k 2 "$3" /bin/sh -c "$2"';

// Exits 0 once the container has stopped (`docker stop` waits for it) or is gone; anything else
// the runner tries again.
const STOP_SCRIPT = `out=$("$0" -H "$1" stop --time "$2" "$3" 2>&1) && exit 0
case $out in *"No such container"*) exit 0 ;; esac
printf '%s\\n' "$out" >&2
exit 1`;

export function workspaceVolumeName(workspaceId: string): string {
  return `countersign-ws-${workspaceId}`;
}

/**
 * The Docker CLI's own folder, its DOCKER_CONFIG and HOME: this user's, mode 0700, so no other
 * local user can plant a configuration (a context or host pointing at another daemon, a
 * credential helper) that a step's `docker start` would follow.
 */
async function privateFolder(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory() || info.uid !== process.getuid?.())
    throw new Error(
      `${dir} is not a folder of this user's (a link, or made by someone else): the Docker client is not pointed at it`,
    );
  await chmod(dir, 0o700);
  return dir;
}

const validWorkspaceId = (workspaceId: string) => {
  if (!/^[A-Za-z0-9._-]{1,180}$/.test(workspaceId) || workspaceId.startsWith('.'))
    throw new Error(`invalid workspace id "${workspaceId}"`);
};

/** A plan's workspace volume for steps and MCP servers: on its own size-limited file system when `disks` is given. */
export interface DockerWorkspaces {
  /** The workspace's volume name, its volume made (bound to its file system) if it has none. */
  prepare(workspaceId: string, sizeBytes: number | undefined): Promise<string>;
  /** The volume goes when `removeFiles`, and the file system is unmounted (or removed with it). */
  release(workspaceId: string, options: { removeFiles: boolean }): Promise<void>;
}

export function dockerWorkspaces(broker: DockerBroker, disks: WorkspaceDisks | undefined): DockerWorkspaces {
  return {
    async prepare(workspaceId, sizeBytes) {
      validWorkspaceId(workspaceId);
      const name = workspaceVolumeName(workspaceId);
      if (!disks) return name; // Docker makes the volume in its own storage on first use
      const bound = await broker.workspaceVolumeFolder(name);
      // A volume in Docker's own storage was made before quotas: the plan keeps it as it is.
      if (bound === null) return name;
      const folder = await disks.ensure(workspaceId, sizeBytes);
      if (bound === undefined)
        await broker.createWorkspaceVolume(name, folder).catch(async (error: unknown) => {
          // A parallel step of the plan made it first.
          if ((await broker.workspaceVolumeFolder(name)) !== folder) throw error;
        });
      else if (bound !== folder)
        throw new SandboxRefused(`the volume ${name} binds ${bound}, not the workspace's own ${folder}`);
      return name;
    },
    async release(workspaceId, { removeFiles }) {
      validWorkspaceId(workspaceId);
      if (removeFiles) await broker.removeWorkspaceVolume(workspaceVolumeName(workspaceId));
      await disks?.release(workspaceId, { removeFiles });
    },
  };
}

export interface DockerBackendOptions {
  broker: DockerBroker;
  /** The Docker CLI's private configuration folder (created mode 0700), never a shared one. */
  clientDir: string;
  dockerCli?: string;
  /** Size-limited workspaces (a file system each); absent: volumes in Docker's own storage, no quota. */
  disks?: WorkspaceDisks;
}

export function createDockerBackend(options: DockerBackendOptions): SandboxBackend {
  const { broker } = options;
  const workspaces = dockerWorkspaces(broker, options.disks);
  const cli = options.dockerCli ?? 'docker';
  const host = `unix://${broker.socketPath}`;
  let clientDir: Promise<string> | undefined;
  const clientEnv = async () => {
    const dir = await (clientDir ??= privateFolder(options.clientDir).catch((error: unknown) => {
      clientDir = undefined;
      throw error;
    }));
    return { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, DOCKER_CONFIG: dir };
  };
  const releaseStep = async ({ runKey }: StepExecution) => {
    const found = await broker.stepContainer(runKey);
    if (found) await broker.remove(found.id);
  };

  return {
    name: 'docker',
    reap: (open, createdBeforeMs) => broker.reap(open, createdBeforeMs),
    async explainFailure(workspaceId, run) {
      if (!run.runKey) return undefined;
      const found = await broker.stepContainer(run.runKey).catch(() => null);
      if (found === null)
        return 'the Docker engine did not answer when the step ended (was it restarting?); the step is not run again';
      if (!found)
        return "the step's container disappeared while the step ran; the step is not run again, and the plan's files stay in its volume";
      const state = (await broker.inspect(found.id)).State;
      const full = await options.disks?.fullness(workspaceId);
      if (full) return full;
      if (state.OOMKilled)
        return `killed by the out-of-memory killer: the step's container reached its memory limit of ${Math.round(DEFAULT_LIMITS.memoryBytes / 1024 ** 2)} MiB`;
      // The client reports what the container's init exited with; anything else means the client
      // lost the container (the engine went away under it).
      if (!run.timedOut && state.ExitCode !== run.exitCode)
        return "the step's workspace container stopped while the step ran (was the Docker engine restarted?); the step is not run again, and the plan's files stay in its volume";
      return undefined;
    },
    prepareWorkspace: (workspaceId, _cwd, { sizeBytes }) => workspaces.prepare(workspaceId, sizeBytes),
    // What still runs of the plan goes; the volume with its files stays unless the plan said not to.
    async releaseWorkspace(workspaceId, options) {
      for (const container of await broker.planContainers(workspaceId)) await broker.remove(container.id);
      await broker.removePlanNetwork(workspaceId);
      await workspaces.release(workspaceId, options);
    },
    releaseStep,
    async argvFor(command): Promise<StepLaunch> {
      const execution = command.execution;
      if (!execution) throw new Error('the Docker backend runs a step only with its execution (run key)');
      // The client's own environment; nothing of it reaches the container.
      const env = await clientEnv();
      // A container made by an attempt that never handed it to a runner was never started: it goes.
      await releaseStep(execution);
      const limitSeconds = Math.ceil(command.timeoutMs / 1000) + IN_CONTAINER_GRACE_SECONDS;
      const { id } = await broker.createStep({
        image: WORKSPACE_IMAGE,
        owner: { plan: execution.workspaceId, step: execution.stepPath },
        workspaceVolume: command.workspace,
        network: execution.egress ? 'egress' : 'none',
        step: { run: execution.runKey, env: command.env },
        command: [
          '/bin/sh',
          '-c',
          STEP_SCRIPT,
          'countersign-step',
          command.cwd,
          command.run,
          `${limitSeconds}`,
        ],
      });
      return {
        file: cli,
        args: ['-H', host, 'start', '--attach', '--interactive', id],
        env,
        stop: { file: '/bin/sh', args: ['-c', STOP_SCRIPT, cli, host, `${STOP_GRACE_SECONDS}`, id], env },
      };
    },
  };
}
