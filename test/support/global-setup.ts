/**
 * One real Temporal dev server (SQLite file) for the whole run. Each test file makes its own
 * namespace on it, so files never see each other's workflows or task queues.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { TestProject } from 'vitest/node';
import { LABELS } from '../../sandbox/docker/container-policy.js';
import { startDevServer, type DevServer } from '../../services/temporal/server.js';
import { freePort } from './ports.js';

let server: DevServer | undefined;

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), 'countersign-temporal-'));
  // Private, as in the stack: every test reaches Temporal through the door with a certificate.
  server = await startDevServer({
    dbFile: join(dir, 'temporal.sqlite'),
    port: await freePort(),
    logFile: join(dir, 'temporal.log'),
    private: { tlsDir: join(dir, 'tls'), socketPath: join(dir, 'temporal', 'frontend.sock') },
  });
  if (!server.temporalTlsDir) throw new Error(`the test server must be private: ${server.warning}`);
  project.provide('temporalAddress', server.address);
  project.provide('temporalTlsDir', server.temporalTlsDir);
  project.provide('temporalDir', dir);
  const startedAtSeconds = Math.floor(Date.now() / 1000);
  return async () => {
    await server?.stop();
    await reapMcpLeftovers(startedAtSeconds);
  };
}

/**
 * The reaper check after the suite: an MCP server container lives exactly as long as its call,
 * so any that this run created and that still exists is a leak. They are removed, and the run fails.
 */
async function reapMcpLeftovers(sinceSeconds: number): Promise<void> {
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  const found = await docker
    .listContainers({ all: true, filters: { label: [`${LABELS.role}=mcp`] } })
    .catch(() => []); // no Docker engine here: nothing can have leaked
  const leaked = found.filter((c) => c.Created >= sinceSeconds - 1);
  for (const c of leaked)
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
  if (!leaked.length) return;
  // Vitest only logs an error thrown here; the exit code is what fails CI.
  process.exitCode = 1;
  console.error(
    `\nFAIL reaper check: MCP server containers were left behind by this run (now removed): ${leaked
      .map((c) => `${c.Names[0]} (step ${c.Labels[LABELS.step] ?? '?'}, ${c.State})`)
      .join(', ')}\n`,
  );
}

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    /** The certificates that pass the door (services/temporal/tls.ts). */
    temporalTlsDir: string;
    temporalDir: string;
  }
}
