/** MCP test helpers: the misbehaving fixture server in a stack's catalog, and leftover checks. */
import Docker from 'dockerode';
import { expect } from 'vitest';
import type { PlanView } from '../../core/plan/state.js';
import type { McpServerEntry } from '../../core/mcp/catalog.js';
import { LABELS } from '../../sandbox/docker/container-policy.js';
import { ensureCatalog, writeCatalog } from '../../sandbox/mcp/catalog-store.js';
import { pinCatalogServer } from '../../services/mcp.js';
import { PROJECT_ROOT, type Config, statePaths } from '../../workers/config.js';
import { brokerScope, createSandbox, MCP_CATALOG_TEMPLATE } from '../../workers/sandbox-choice.js';
import { stepOf } from './plans.js';

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

/**
 * The filesystem server through a plan: it reads a shell step's file, writes one a shell step
 * reads, and refuses a path outside the workspace. Check the ended plan with `expectRoundTrip`.
 */
export const FILESYSTEM_ROUND_TRIP = {
  name: 'fs',
  steps: [
    { id: 'make', run: 'mkdir -p notes && echo "from the shell step" > notes/shell.txt' },
    {
      id: 'read-shell',
      mcp: {
        server: 'filesystem',
        tool: 'read_text_file',
        arguments: { path: '/workspace/notes/shell.txt' },
      },
    },
    {
      id: 'write',
      mcp: {
        server: 'filesystem',
        tool: 'write_file',
        arguments: { path: '/workspace/notes/mcp.txt', content: 'written by the MCP server' },
      },
    },
    { id: 'check', run: 'cat notes/mcp.txt' },
    {
      id: 'escape',
      mcp: { server: 'filesystem', tool: 'read_text_file', arguments: { path: '/etc/passwd' } },
    },
  ],
};

export function expectRoundTrip(view: PlanView, backend: 'docker' | 'jail'): void {
  expect(stepOf(view, 'read-shell').status).toBe('succeeded');
  expect(stepOf(view, 'read-shell').result!.outputTail).toContain('from the shell step');
  expect(stepOf(view, 'read-shell').result!.backend).toBe(backend);
  expect(stepOf(view, 'write').status).toBe('succeeded');
  expect(stepOf(view, 'write').result!.backend).toBe(backend);
  expect(stepOf(view, 'check').result!.outputTail).toContain('written by the MCP server');
  const escape = stepOf(view, 'escape');
  expect(escape.status).toBe('failed');
  expect(escape.result!.mcp!.isError).toBe(true);
  expect(escape.error).toMatch(/the tool reported an error: .*(denied|outside allowed)/i);
  expect(escape.result!.outputTail).not.toContain('root:x:0');
}
