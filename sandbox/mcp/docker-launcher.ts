/** MCP servers in Docker: one hardened container per call, created through the broker, removed after. */
import type { McpServerEntry } from '../../core/mcp/catalog.js';
import type { DockerBroker } from '../docker/broker.js';
import { dockerWorkspaces, type DockerWorkspaces } from '../docker/docker-backend.js';
import { tailKeeper, type LaunchedServer, type McpLauncher } from './launcher.js';

/** `workspaces`: the same the shell steps use, so a plan's first MCP call makes its workspace as a step would. */
export function createDockerMcpLauncher(
  broker: DockerBroker,
  workspaces: DockerWorkspaces = dockerWorkspaces(broker, undefined),
): McpLauncher {
  return {
    name: 'docker',
    imageOf: (entry: McpServerEntry) => entry.imageId,
    removeLeftovers: (callKey) => broker.removeCallLeftovers(callKey),

    async launch({ entry, workspaceId, workspaceSizeBytes, stepPath, callKey }): Promise<LaunchedServer> {
      if (!entry.imageId)
        throw new Error(`server "${entry.id}" has no pinned image (run \`countersign mcp pin ${entry.id}\`)`);
      await broker.admitImage(entry.image, entry.imageId);
      const memoryBytes = entry.limits.memoryMiB * 1024 ** 2;
      const container = await broker.runAttached({
        image: entry.image,
        owner: { plan: workspaceId, step: stepPath, call: callKey },
        network: entry.network,
        command: entry.command,
        ...(Object.keys(entry.env).length ? { env: entry.env } : {}),
        limits: { memoryBytes, nanoCpus: Math.round(entry.limits.cpus * 1e9), pids: entry.limits.pids },
        ...(entry.workspace === 'none'
          ? {}
          : {
              workspaceVolume: await workspaces.prepare(workspaceId, workspaceSizeBytes),
              workspaceReadOnly: entry.workspace === 'read-only',
            }),
      });
      const stderr = tailKeeper();
      container.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      let disposed: Promise<void> | undefined;
      return {
        stdin: container.stdin,
        stdout: container.stdout,
        stderrTail: stderr.text,
        async exit(waitMs) {
          const deadline = Date.now() + waitMs;
          for (;;) {
            const state = (await broker.inspect(container.id)).State;
            if (!state.Running)
              return {
                exitCode: state.ExitCode,
                ...(state.OOMKilled
                  ? {
                      diagnosis: `was killed by the out-of-memory killer at its memory limit of ${entry.limits.memoryMiB} MiB`,
                    }
                  : {}),
              };
            if (Date.now() >= deadline) return undefined;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        },
        dispose() {
          container.stdin.destroy();
          return (disposed ??= broker.remove(container.id));
        },
      };
    },
  };
}
