/** MCP test helpers: the misbehaving fixture server in a stack's catalog, and leftover checks. */
import Docker from 'dockerode';
import type { McpServerEntry } from '../../core/mcp/catalog.js';
import { LABELS } from '../../sandbox/docker/container-policy.js';
import { ensureCatalog, writeCatalog } from '../../sandbox/mcp/catalog-store.js';
import { pinCatalogServer } from '../../services/mcp.js';
import { PROJECT_ROOT, type Config, statePaths } from '../../workers/config.js';
import { createSandbox, MCP_CATALOG_TEMPLATE } from '../../workers/executor.js';
import { brokerScope } from '../../workers/sandbox-choice.js';

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

const fixture = (
  id: string,
  mode: string,
  workspace: McpServerEntry['workspace'] = 'none',
): McpServerEntry => ({
  id,
  description: `the test fixture server in ${mode} mode`,
  image: 'countersign/mcp-fixture:latest',
  source: 'test/fixtures/mcp-fixture',
  command: ['node', '/opt/mcp/server.mjs', mode],
  env: {},
  workspace,
  network: 'none',
  limits: { memoryMiB: 64, cpus: 1, pids: 64, callTimeout: '1m' },
  tools: {},
});

/**
 * Adds the fixture to the stack's catalog, pinned the way an operator would (`mcp pin`) while
 * it is honest, and the same pins under servers that now run it poisoned, silent or spewing
 * garbage: each is a server that changed after it was approved.
 */
export async function addFixtureServers(config: Config, backend: 'docker' | 'jail'): Promise<void> {
  const sandbox = await createSandbox(backend, config);
  const path = statePaths(config.home).mcpCatalog;
  const catalog = await ensureCatalog({
    path,
    template: MCP_CATALOG_TEMPLATE,
    projectRoot: PROJECT_ROOT,
    imageIdOf: sandbox.imageIdOf,
  });
  catalog.servers.push(fixture('fixture', 'honest', 'read-write'));
  const pinned = await pinCatalogServer({
    catalog,
    serverId: 'fixture',
    allow: ['echo', 'touch', 'sleep', 'crash', 'hog'],
    launcher: sandbox.mcp,
    backend: sandbox.backend,
    imageIdOf: sandbox.imageIdOf,
    projectRoot: PROJECT_ROOT,
  });
  const honest = pinned.catalog.servers.find((s) => s.id === 'fixture')!;
  for (const mode of ['poisoned', 'silent', 'garbage'])
    pinned.catalog.servers.push({
      ...honest,
      id: `fixture-${mode}`,
      command: ['node', '/opt/mcp/server.mjs', mode],
    });
  await writeCatalog(path, pinned.catalog);
}

/** MCP server containers of this installation still present (running or not). */
export async function mcpContainers(config: Config): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.role}=mcp`, `${LABELS.scope}=${brokerScope(config)}`] },
  });
}
