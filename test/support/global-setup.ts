/**
 * One real Temporal dev server (SQLite file) for the whole run. Each test file makes its own
 * namespace on it, so files never see each other's workflows or task queues.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDevServer, type DevServer } from '../../services/temporal-server.js';
import { freePort } from './ports.js';

let server: DevServer | undefined;

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), 'countersign-temporal-'));
  server = await startDevServer({
    dbFile: join(dir, 'temporal.sqlite'),
    port: await freePort(),
    logFile: join(dir, 'temporal.log'),
  });
  project.provide('temporalAddress', server.address);
  project.provide('temporalDir', dir);
  return async () => {
    await server?.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalDir: string;
  }
}
