/**
 * The API process: validates its configuration, connects to Temporal, and is the only place
 * that listens. Started by the embedded stack's supervisor; stops cleanly on SIGTERM.
 */
import { Client, type Connection } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectTemporal } from '../services/temporal/connection.js';
import type { Config } from '../workers/config.js';
import { isMain, runMain } from '../workers/main.js';
import { buildApp } from './app.js';
import { loadApiConfig } from './config.js';
import { ControlPlane } from './plugins/control-plane.js';

async function connect(config: Config): Promise<Connection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectTemporal(config, 'api', { connectTimeout: 3_000 });
    } catch (error) {
      if (attempt >= 20)
        throw new Error(`cannot reach Temporal at ${config.temporalAddress}: ${(error as Error).message}`);
      await sleep(500);
    }
  }
}

export async function startApiServer(): Promise<{ url: string; close(): Promise<void> }> {
  const config = loadApiConfig();
  const connection = await connect(config);
  const client = new Client({ connection, namespace: config.namespace });
  const app = await buildApp({ controlPlane: new ControlPlane(client, config), logger: { level: 'info' } });
  await app.listen({ host: config.host, port: config.port });
  app.log.info(`Countersign API and web app at ${config.publicUrl}`);
  return {
    url: config.publicUrl,
    async close() {
      await app.close();
      await connection.close();
    },
  };
}

if (isMain(import.meta.url)) {
  runMain('countersign api', async () => {
    const server = await startApiServer();
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await server.close();
  });
}
