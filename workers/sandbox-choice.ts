/**
 * Which sandbox the executor uses. Docker is the default; where no engine answers, the
 * bubblewrap jail takes over with a loud warning. The automatic choice is remembered: once a
 * machine ran plans in Docker, a Docker that stops answering is an error, not a silent switch
 * (a plan half-way through would find its workspace missing in the jail).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import type { SandboxBackend } from '../sandbox/backend.js';
import { DockerBroker } from '../sandbox/docker/broker.js';
import { createDockerBackend, dockerWorkspaces, WORKSPACE_IMAGE } from '../sandbox/docker/docker-backend.js';
import { parseSize, sizeText, WORKSPACE_SIZE_LIMITS } from '../core/plan/limits.js';
import { scriptEgressFirewall, type WatchedEgressFirewall } from '../sandbox/docker/egress-firewall.js';
import { createJailBackend } from '../sandbox/jail/jail-backend.js';
import { jailUser } from '../sandbox/jail/launch.js';
import { createWorkspaceDisks } from '../sandbox/workspace-disk.js';
import { createDockerMcpLauncher } from '../sandbox/mcp/docker-launcher.js';
import { createJailMcpLauncher } from '../sandbox/mcp/jail-launcher.js';
import type { McpLauncher } from '../sandbox/mcp/launcher.js';
import { ConfigError, PROJECT_ROOT, statePaths, type Config } from './config.js';

export type BackendName = 'jail' | 'docker';

export interface SandboxChoice {
  name: BackendName;
  /** Set when the jail was chosen because Docker is not there: print it where people look. */
  warning?: string;
}

/** COUNTERSIGN_SANDBOX: `docker`, `jail`, or unset (automatic). */
export function sandboxFromEnv(env: NodeJS.ProcessEnv = process.env): BackendName | 'auto' {
  const value = env.COUNTERSIGN_SANDBOX || 'auto';
  if (value !== 'jail' && value !== 'docker' && value !== 'auto')
    throw new ConfigError(`COUNTERSIGN_SANDBOX must be docker, jail or auto, got "${value}"`);
  return value;
}

/**
 * @param dockerProblem resolves to undefined when Docker and the workspace image are ready,
 *   else to what is wrong.
 * @param choiceFile where the automatic choice is remembered.
 */
export async function chooseSandbox(
  wanted: BackendName | 'auto',
  dockerProblem: () => Promise<string | undefined>,
  choiceFile: string,
): Promise<SandboxChoice> {
  if (wanted !== 'auto') return { name: wanted };
  const problem = await dockerProblem();
  const previous = await readFile(choiceFile, 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
  if (!problem) {
    if (previous !== 'docker') {
      await mkdir(dirname(choiceFile), { recursive: true });
      await writeFile(choiceFile, 'docker\n');
    }
    return { name: 'docker' };
  }
  if (previous === 'docker')
    throw new ConfigError(
      `this machine runs its plans in Docker, and Docker does not answer now (${problem}). ` +
        'Start it (scripts/setup) and the executor carries on; plans wait, nothing is lost. ' +
        'To move to the bubblewrap jail on purpose, set COUNTERSIGN_SANDBOX=jail.',
    );
  return {
    name: 'jail',
    warning:
      `WARNING: Docker is not available (${problem}); steps run in the bubblewrap jail instead. ` +
      'Run scripts/setup to install and start Docker, or set COUNTERSIGN_SANDBOX=jail to choose the jail.',
  };
}

/** The installation's scope label: its state folder, so two installations on one engine never reap each other. */
export function brokerScope(config: Config): string {
  return createHash('sha256').update(resolve(config.home)).digest('hex').slice(0, 16);
}

let egressFirewall: WatchedEgressFirewall | undefined;

/**
 * The egress firewall this process keeps up to date (one per process), when it can: as root. An
 * executor that is not (compose) leaves it to the host's scripts/egress-network.
 */
function hostEgressFirewall(): WatchedEgressFirewall | undefined {
  if (process.getuid?.() !== 0) return undefined;
  egressFirewall ??= scriptEgressFirewall(join(PROJECT_ROOT, 'scripts', 'egress-network'));
  return egressFirewall;
}

export const connectWorkspaceBroker = (config: Config) =>
  DockerBroker.connect(
    [WORKSPACE_IMAGE],
    { info: () => undefined },
    { scope: brokerScope(config), egressFirewall: hostEgressFirewall() },
  );

/** Docker unless COUNTERSIGN_SANDBOX says otherwise; the jail, loudly, where Docker is missing. */
export async function chooseExecutorSandbox(config: Config): Promise<SandboxChoice> {
  return chooseSandbox(
    sandboxFromEnv(),
    () =>
      connectWorkspaceBroker(config).then(
        () => undefined,
        (error: unknown) => (error as Error).message,
      ),
    statePaths(config.home).sandboxChoice,
  );
}

/** The shipped MCP catalog every installation's own copy starts from. */
export const MCP_CATALOG_TEMPLATE = join(PROJECT_ROOT, 'sandbox', 'mcp', 'catalog.json');

export interface Sandbox {
  backend: SandboxBackend;
  mcp: McpLauncher;
  imageIdOf: (tag: string) => Promise<string | undefined>;
}

/**
 * COUNTERSIGN_WORKSPACE_SIZE: each workspace's disk quota unless its plan sets `workspaceSize`
 * (default 4GiB), or `off` for workspaces without one (where the executor cannot mount file
 * systems: not root, no loop devices).
 */
export function workspaceSizeFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = env.COUNTERSIGN_WORKSPACE_SIZE || sizeText(WORKSPACE_SIZE_LIMITS.default);
  if (value === 'off') return undefined;
  const bytes = parseSize(value);
  if (bytes === undefined || bytes < WORKSPACE_SIZE_LIMITS.min || bytes > WORKSPACE_SIZE_LIMITS.max)
    throw new ConfigError(
      `COUNTERSIGN_WORKSPACE_SIZE must be off or a size from ${sizeText(WORKSPACE_SIZE_LIMITS.min)} to ${sizeText(WORKSPACE_SIZE_LIMITS.max)} (such as 4GiB), got "${value}"`,
    );
  return bytes;
}

/** Uid and gid of the Docker sandbox's user (container-policy.ts runs every container as 1000:1000). */
const CONTAINER_USER = { uid: 1000, gid: 1000 };

export async function createSandbox(name: BackendName, config: Config): Promise<Sandbox> {
  const workspacesDir = statePaths(config.home).workspaces;
  const defaultSizeBytes = workspaceSizeFromEnv();
  if (name === 'jail') {
    // Not root: the jail runs as this user, and mounting is out of reach anyway (a step is refused, saying so).
    const owner = (await jailUser()) ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const disks = createWorkspaceDisks({ workspacesDir, owner, defaultSizeBytes });
    return {
      backend: createJailBackend({ workspacesDir, disks }),
      mcp: createJailMcpLauncher({ projectRoot: PROJECT_ROOT, workspacesDir, disks }),
      imageIdOf: async () => undefined,
    };
  }
  const broker = await connectWorkspaceBroker(config);
  const disks = createWorkspaceDisks({ workspacesDir, owner: CONTAINER_USER, defaultSizeBytes });
  return {
    // The Docker CLI a runner starts reads its configuration from the executor's own folder.
    backend: createDockerBackend({
      broker,
      clientDir: resolve(config.home, 'executor', 'docker-client'),
      disks,
    }),
    mcp: createDockerMcpLauncher(broker, dockerWorkspaces(broker, disks)),
    imageIdOf: (tag) => broker.currentImageId(tag),
  };
}
