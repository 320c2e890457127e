/**
 * The Docker broker: the only code that talks to the Docker API. It creates containers only from
 * catalog images (pinned by image id when the broker starts) and only with the hardened spec;
 * every operation is logged with the container id, and "already gone" counts as success.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import Docker from 'dockerode';
import { MAX_CALL_TIMEOUT_MS } from '../../core/mcp/catalog.js';
import {
  BrokerRefused,
  checkContainerRequest,
  EGRESS_NETWORK,
  hardenedSpec,
  isWorkspaceVolumeName,
  LABELS,
  type ContainerRequest,
} from './container-policy.js';
import { ensurePlanEgressNetwork, removePlanEgressNetworks } from './egress-networks.js';

/** The egress firewall's rules, re-derived from the machine as it is (scripts/egress-network --rules). */
export interface EgressFirewall {
  refresh(): Promise<void>;
}

export interface BrokerLog {
  info(message: string, meta?: Record<string, unknown>): void;
}

export interface ManagedContainer {
  id: string;
  name: string;
}

/** A container started with its stdio attached (an MCP server). */
export interface AttachedContainer extends ManagedContainer {
  stdin: Duplex;
  stdout: Readable;
  stderr: Readable;
}

/** Non-TTY output from the Docker API is multiplexed: an 8-byte frame header before each chunk. */
function demultiplex(buffer: Buffer): string {
  const out: Buffer[] = [];
  for (let i = 0; i + 8 <= buffer.length;) {
    const size = buffer.readUInt32BE(i + 4);
    out.push(buffer.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(out).toString('utf8');
}

/** An MCP server container past this age outlived its call (the longest allowed, and a margin). */
export const MCP_SERVER_MAX_AGE_MS = MAX_CALL_TIMEOUT_MS + 5 * 60 * 1000;

const isGone = (error: unknown) => (error as { statusCode?: number }).statusCode === 404;

export class DockerBroker {
  private constructor(
    private readonly docker: Docker,
    /** Catalog tag → image id, resolved once: a tag moved later does not change what runs. */
    private readonly images: Map<string, string>,
    private readonly log: BrokerLog,
    /** Which installation owns the containers: the reaper only ever removes its own. */
    readonly scope: string,
    /** The engine's socket (the Docker CLI a runner starts is pointed at it too). */
    readonly socketPath: string,
    /** Brings the egress firewall up to date with the machine before an egress container starts. */
    private readonly egressFirewall: EgressFirewall | undefined,
  ) {}

  static async connect(
    catalog: string[],
    log: BrokerLog,
    options: { socketPath?: string; scope?: string; egressFirewall?: EgressFirewall } = {},
  ): Promise<DockerBroker> {
    const socketPath = options.socketPath ?? '/var/run/docker.sock';
    const docker = new Docker({ socketPath });
    const images = new Map<string, string>();
    for (const tag of catalog) {
      const image = await docker
        .getImage(tag)
        .inspect()
        .catch((error: unknown) => {
          throw new Error(
            `catalog image ${tag} is not built (run scripts/setup): ${(error as Error).message}`,
          );
        });
      images.set(tag, image.Id);
    }
    return new DockerBroker(
      docker,
      images,
      log,
      options.scope ?? 'default',
      socketPath,
      options.egressFirewall,
    );
  }

  /** The id of the image a tag names now, or undefined when there is none. */
  async currentImageId(tag: string): Promise<string | undefined> {
    const found = await this.docker
      .getImage(tag)
      .inspect()
      .catch(() => undefined);
    return found?.Id;
  }

  /** The image id a catalog tag was pinned to when it was admitted. */
  imageId(tag: string): string | undefined {
    return this.images.get(tag);
  }

  /**
   * Lets a further image into the catalog (an MCP server's), pinned to `expectedId`: refused
   * when the tag now names another image, so a swapped image never runs under an old approval.
   */
  async admitImage(tag: string, expectedId: string): Promise<void> {
    if (this.images.get(tag) === expectedId) return;
    // The catalog is a file: whatever it names, only images this project builds are admitted.
    if (!/^countersign\/mcp-[a-z0-9._-]+(:[A-Za-z0-9._-]+)?$/.test(tag))
      throw new BrokerRefused('unknown_image', `only countersign/mcp-* images run MCP servers, not ${tag}`);
    const found = await this.docker
      .getImage(tag)
      .inspect()
      .catch(() => undefined);
    if (!found)
      throw new BrokerRefused('unknown_image', `image ${tag} is not built here (run scripts/setup)`);
    if (found.Id !== expectedId)
      throw new BrokerRefused(
        'unknown_image',
        `image ${tag} is now ${found.Id.slice(0, 19)}…, and the catalog pins ${expectedId.slice(0, 19)}…`,
      );
    this.images.set(tag, expectedId);
  }

  /** Checks the request (throws BrokerRefused), then creates and starts a hardened container. */
  async run(raw: unknown): Promise<ManagedContainer> {
    const { container, name } = await this.create(raw, 'started');
    await container.start();
    this.log.info('started container', { id: container.id });
    return { id: container.id, name };
  }

  /**
   * As `run`, with stdio attached before the start, so not one byte of output is missed. The
   * caller owns the container from here and must `remove` it.
   */
  async runAttached(raw: unknown): Promise<AttachedContainer> {
    const { container, name } = await this.create({ ...(raw as object), stdio: true }, 'started');
    let stream: Duplex | undefined;
    try {
      stream = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      })) as Duplex;
      const attached = stream;
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      this.docker.modem.demuxStream(attached, stdout, stderr);
      attached.on('end', () => {
        stdout.end();
        stderr.end();
      });
      attached.on('error', (error) => stdout.destroy(error));
      await container.start();
      return { id: container.id, name, stdin: attached, stdout, stderr };
    } catch (error) {
      stream?.destroy();
      await this.remove(container.id).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Checks a step's request (it must have `step`) and creates its container, not started: the
   * step's runner starts it with its terminal attached (`docker start -ai`), so not one byte of
   * its output is missed and the runner, which outlives the executor, owns it.
   */
  async createStep(raw: unknown): Promise<ManagedContainer> {
    const { container, name } = await this.create(raw, 'created');
    return { id: container.id, name };
  }

  private async create(raw: unknown, as: 'started' | 'created') {
    const request: ContainerRequest = checkContainerRequest(raw, this.images);
    if ((request.step !== undefined) !== (as === 'created'))
      throw new BrokerRefused(
        'bad_command',
        request.step
          ? "a step's container is created for its runner to start (createStep)"
          : 'only a step container is created without being started',
      );
    const network = request.network === 'egress' ? await this.egressNetworkOf(request.owner.plan) : undefined;
    const name = `countersign-${request.owner.plan.slice(0, 60)}-${randomBytes(4).toString('hex')}`;
    this.log.info('creating container', { name, image: request.image, plan: request.owner.plan });
    const container = await this.docker.createContainer(
      hardenedSpec(request, this.images.get(request.image)!, name, this.scope, network),
    );
    this.log.info('created container', { id: container.id, name });
    return { container, name };
  }

  /** Removes the server containers an earlier attempt of this call left (its executor died); returns how many. */
  async removeCallLeftovers(call: string): Promise<number> {
    const found = await this.docker.listContainers({
      all: true,
      filters: {
        label: [`${LABELS.managed}=true`, `${LABELS.scope}=${this.scope}`, `${LABELS.call}=${call}`],
      },
    });
    for (const c of found) await this.remove(c.Id);
    return found.length;
  }

  /**
   * The plan's own egress network, made if it has none, once the firewall is set up and brought
   * up to date (a network attached since the last refresh is blocked before the step starts).
   */
  private async egressNetworkOf(plan: string): Promise<string> {
    await this.checkEgressNetwork();
    try {
      await this.egressFirewall?.refresh();
    } catch (error) {
      throw new BrokerRefused(
        'egress_unavailable',
        `the egress firewall could not be brought up to date with this machine's networks (${(error as Error).message}); the step was not started`,
      );
    }
    return ensurePlanEgressNetwork(this.docker, this.scope, plan);
  }

  /** Removes the plan's egress network (once nothing of the plan is attached to it). */
  async removePlanNetwork(plan: string): Promise<void> {
    await removePlanEgressNetworks(this.docker, this.scope, { onlyPlan: plan });
  }

  /** The egress network must be the one scripts/egress-network made, firewall and all. */
  private async checkEgressNetwork(): Promise<void> {
    const network = await this.docker
      .getNetwork(EGRESS_NETWORK)
      .inspect()
      .catch(() => undefined);
    const options = (network?.Options ?? {}) as Record<string, string>;
    if (
      network?.Labels?.['countersign.role'] !== 'egress' ||
      options['com.docker.network.bridge.enable_icc'] !== 'false'
    )
      throw new BrokerRefused(
        'egress_unavailable',
        `the egress-only network ${EGRESS_NETWORK} is not set up here (run scripts/setup); the step was not started`,
      );
  }

  /** The step container of one execution (its run key), if it exists. */
  async stepContainer(runKey: string): Promise<{ id: string; running: boolean } | undefined> {
    const [found] = await this.docker.listContainers({
      all: true,
      filters: {
        label: [`${LABELS.managed}=true`, `${LABELS.scope}=${this.scope}`, `${LABELS.run}=${runKey}`],
      },
    });
    return found && { id: found.Id, running: found.State === 'running' };
  }

  /**
   * What runs for a plan's steps: its step containers (and a workspace container an earlier
   * version kept per plan), not the servers of its MCP calls.
   */
  async planContainers(plan: string): Promise<{ id: string; running: boolean; step?: string }[]> {
    const found = await this.docker.listContainers({
      all: true,
      filters: {
        label: [`${LABELS.managed}=true`, `${LABELS.scope}=${this.scope}`, `${LABELS.plan}=${plan}`],
      },
    });
    return found
      .filter((c) => c.Labels[LABELS.role] !== 'mcp')
      .map((c) => ({
        id: c.Id,
        running: c.State === 'running',
        ...(c.Labels[LABELS.step] ? { step: c.Labels[LABELS.step] } : {}),
      }));
  }

  /**
   * Where a workspace volume keeps its files: the host folder it binds (a quota'd workspace), null
   * for a volume in Docker's own storage (made before quotas, or with them off), undefined for none.
   */
  async workspaceVolumeFolder(name: string): Promise<string | null | undefined> {
    if (!isWorkspaceVolumeName(name))
      throw new BrokerRefused('bad_volume', `only countersign-ws-* volumes are looked at, not "${name}"`);
    try {
      const volume = (await this.docker.getVolume(name).inspect()) as {
        Options?: Record<string, string> | null;
      };
      return volume.Options?.o === 'bind' ? (volume.Options.device ?? null) : null;
    } catch (error) {
      if (isGone(error)) return undefined;
      throw error;
    }
  }

  /** Makes a workspace volume that binds `folder` (the workspace's own file system) on the engine's host. */
  async createWorkspaceVolume(name: string, folder: string): Promise<void> {
    if (!isWorkspaceVolumeName(name))
      throw new BrokerRefused('bad_volume', `only countersign-ws-* volumes are made, not "${name}"`);
    if (!folder.startsWith('/'))
      throw new BrokerRefused('bad_volume', `a workspace volume binds an absolute folder, not "${folder}"`);
    await this.docker.createVolume({
      Name: name,
      Driver: 'local',
      DriverOpts: { type: 'none', o: 'bind', device: folder },
      Labels: { [LABELS.managed]: 'true', [LABELS.scope]: this.scope },
    });
    this.log.info('created volume', { name, folder });
  }

  /** Removes a workspace volume (its files); gone already counts as done. */
  async removeWorkspaceVolume(name: string): Promise<void> {
    if (!isWorkspaceVolumeName(name))
      throw new BrokerRefused('bad_volume', `only countersign-ws-* volumes are removed, not "${name}"`);
    try {
      await this.docker.getVolume(name).remove();
      this.log.info('removed volume', { name });
    } catch (error) {
      if (!isGone(error)) throw error;
    }
  }

  async inspect(id: string) {
    return this.docker.getContainer(id).inspect();
  }

  async logs(id: string): Promise<string> {
    const buffer = (await this.docker
      .getContainer(id)
      .logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    return demultiplex(buffer);
  }

  async wait(id: string): Promise<number> {
    const { StatusCode } = (await this.docker.getContainer(id).wait()) as { StatusCode: number };
    return StatusCode;
  }

  async remove(id: string): Promise<void> {
    this.log.info('removing container', { id });
    try {
      await this.docker.getContainer(id).remove({ force: true, v: false });
      this.log.info('removed container', { id });
    } catch (error) {
      if (!isGone(error)) throw error;
      this.log.info('container already gone', { id });
    }
  }

  /**
   * Removes every managed container whose plan is not in `livePlans` (and, when given, that was
   * created before `createdBeforeMs`, so a plan started after the list was made keeps its own),
   * and every MCP server container older than the longest call (whatever its plan: a server lives
   * for one call, so an old one is one its executor could not remove). Returns the ids removed.
   */
  async reap(
    livePlans: ReadonlySet<string>,
    createdBeforeMs = Infinity,
    options: { mcpMaxAgeMs?: number } = {},
  ): Promise<string[]> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.managed}=true`, `${LABELS.scope}=${this.scope}`] },
    });
    const mcpBornBeforeMs = Date.now() - (options.mcpMaxAgeMs ?? MCP_SERVER_MAX_AGE_MS);
    // Docker reports creation in whole seconds: a second of margin.
    const stale = containers.filter(
      (c) =>
        (!livePlans.has(c.Labels[LABELS.plan] ?? '') && c.Created * 1000 < createdBeforeMs - 1000) ||
        (c.Labels[LABELS.role] === 'mcp' && c.Created * 1000 < mcpBornBeforeMs - 1000),
    );
    for (const c of stale) await this.remove(c.Id);
    await removePlanEgressNetworks(this.docker, this.scope, { livePlans, createdBeforeMs });
    return stale.map((c) => c.Id);
  }
}
