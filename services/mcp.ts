/**
 * `countersign mcp pin`: starts a catalog server the way a call would, reads its tools, and
 * re-pins the entry (image and tool hashes), reporting every difference from what was approved.
 */
import { randomBytes } from 'node:crypto';
import type { McpCatalog, McpServerEntry } from '../core/mcp/catalog.js';
import type { SandboxBackend } from '../sandbox/backend.js';
import { repin, sourceLockOf, type PinChange } from '../sandbox/mcp/catalog-store.js';
import type { McpLauncher } from '../sandbox/mcp/launcher.js';
import { listServerTools } from '../sandbox/mcp/list-tools.js';
import { UserFacingError } from './errors.js';

export interface PinReport {
  server: string;
  image: { before?: string | undefined; after?: string | undefined };
  changes: PinChange[];
  catalog: McpCatalog;
}

export async function pinCatalogServer(options: {
  catalog: McpCatalog;
  serverId: string;
  allow?: string[];
  launcher: McpLauncher;
  backend: SandboxBackend;
  imageIdOf: (tag: string) => Promise<string | undefined>;
  projectRoot: string;
}): Promise<PinReport> {
  const { catalog, serverId, launcher } = options;
  const entry = catalog.servers.find((s) => s.id === serverId);
  if (!entry)
    throw new UserFacingError(
      `no server "${serverId}" in the catalog (it has ${catalog.servers.map((s) => s.id).join(', ')})`,
      'not_found',
    );
  const imageId = launcher.name === 'docker' ? await options.imageIdOf(entry.image) : entry.imageId;
  if (launcher.name === 'docker' && !imageId)
    throw new UserFacingError(`image ${entry.image} is not built here: run scripts/setup`, 'unavailable');
  const candidate: McpServerEntry = {
    ...entry,
    imageId,
    sourceLock: (await sourceLockOf(options.projectRoot, entry)) ?? entry.sourceLock,
  };
  // A throwaway workspace, so a server that mounts one starts as it would for a call.
  const workspaceId = `pin-${serverId}-${randomBytes(4).toString('hex')}`;
  const server = await launcher.launch({
    entry: candidate,
    workspaceId,
    stepPath: 'pin',
    callKey: randomBytes(16).toString('hex'),
  });
  let listed;
  try {
    listed = await listServerTools(server);
  } catch (error) {
    throw new UserFacingError(
      `server "${serverId}" did not list its tools: ${(error as Error).message}`,
      'unavailable',
    );
  } finally {
    await server.dispose();
    if (entry.workspace !== 'none')
      await options.backend.releaseWorkspace(workspaceId, { removeFiles: true }).catch(() => undefined);
  }
  const { entry: pinned, changes, unknown } = repin(candidate, listed, options.allow);
  if (unknown.length)
    throw new UserFacingError(
      `server "${serverId}" has no tool ${unknown.map((t) => `"${t}"`).join(', ')} (it offers ${listed.map((t) => t.name).join(', ')})`,
      'not_found',
    );
  return {
    server: serverId,
    image: {
      before: launcher.name === 'docker' ? entry.imageId : entry.sourceLock,
      after: launcher.name === 'docker' ? pinned.imageId : pinned.sourceLock,
    },
    changes,
    catalog: { ...catalog, servers: catalog.servers.map((s) => (s.id === serverId ? pinned : s)) },
  };
}
