/**
 * The notice bench's stack: a real Temporal dev server, the control worker in this process with
 * ntfy and Web Push pointed at the local servers of test/support, the executor in its own process,
 * and one paired device with both channels on.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { generateKeyPair, type KeyPair } from '../core/keys.js';
import { openLocalPairing, pairRoot } from '../services/devices.js';
import { changeNotifySettings, readNotifySettings } from '../services/notify/settings.js';
import { startDevServer, type DevServer } from '../services/temporal/server.js';
import {
  startNtfyServer,
  subscribe,
  type NtfyServer,
  type NtfySubscriber,
} from '../test/support/ntfy-server.js';
import { freePort } from '../test/support/ports.js';
import { WorkerProcess } from '../test/support/processes.js';
import { startWebPushEndpoint, type WebPushEndpoint } from '../test/support/web-push-endpoint.js';
import { statePaths, type Config } from '../workers/config.js';
import { createControlWorker } from '../workers/control.js';
import { until } from './harness.js';

const NTFY_TOKEN = `tk_${randomBytes(12).toString('hex')}`;

export interface NoticeStack {
  client: Client;
  root: KeyPair & { name: string };
  server: DevServer;
  executor: WorkerProcess;
  ntfy: NtfyServer;
  push: WebPushEndpoint;
  phone: NtfySubscriber;
  /** The SDK's Prometheus metrics of this process's worker. */
  metricsUrl: string;
  close(): Promise<void>;
}

/** Temporal, the control worker in this process with ntfy and Web Push, and one device on both. */
export async function startNoticeStack(): Promise<NoticeStack> {
  const dir = await mkdtemp(join(tmpdir(), 'countersign-bench-notify-'));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };
  try {
    // The activity logs every notice and the SDK every denied plan: kept off the console. The
    // SDK's own metrics say how long the worker held each workflow task and query.
    const metricsUrl = `http://127.0.0.1:${await freePort()}/metrics`;
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: {
        logging: { filter: { core: 'ERROR', other: 'ERROR' } },
        metrics: { prometheus: { bindAddress: new URL(metricsUrl).host } },
      },
    });
    const [ntfy, push] = await Promise.all([startNtfyServer({ token: NTFY_TOKEN }), startWebPushEndpoint()]);
    cleanups.push(
      () => ntfy.close(),
      () => push.close(),
    );
    const server = await startDevServer({
      dbFile: join(dir, 'temporal.sqlite'),
      port: await freePort(),
      logFile: join(dir, 'temporal.log'),
    });
    cleanups.push(() => server.stop());
    const config: Config = { home: join(dir, 'home'), temporalAddress: server.address, namespace: 'default' };
    const paths = statePaths(config.home);
    const workerConnection = await NativeConnection.connect({ address: server.address });
    cleanups.push(() => workerConnection.close());
    const worker = await createControlWorker(config, workerConnection, {
      notify: {
        publicUrl: 'https://countersign.example.test',
        ntfy: { server: ntfy.url, publicServer: ntfy.url, token: NTFY_TOKEN },
        vapidSubject: 'mailto:bench@countersign.example.test',
        allowLocalPushEndpoints: true,
        requestTimeoutMs: 3000,
      },
      notifier: { webPushAgent: push.agent },
    });
    const running = worker.run();
    cleanups.push(async () => {
      worker.shutdown();
      await running;
    });
    // A gate needs no executor, but an ended plan releases its workspace there: without one,
    // every plan would wait out that activity's schedule-to-start timeout.
    const executor = new WorkerProcess('executor', config, dir, { COUNTERSIGN_SANDBOX: 'jail' });
    cleanups.push(() => executor.kill('SIGTERM'));
    await executor.start();

    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection });
    const root = { ...generateKeyPair(), name: 'bench phone' };
    const code = await until(() => openLocalPairing(client, paths), 200);
    await pairRoot(client, root, code, paths.pinnedRoot);
    await until(async () => (await readNotifySettings(client)).offer.webPushPublicKey, 200);
    await changeNotifySettings(client, root.keyId, {
      type: 'preferences',
      ntfy: { enabled: true },
      webPush: { enabled: true },
      fcm: { enabled: false },
      quietHours: null,
    });
    await changeNotifySettings(client, root.keyId, {
      type: 'addWebPush',
      subscription: push.createSubscription(),
    });
    const topic = (await readNotifySettings(client)).devices[root.keyId]!.ntfy.topic;
    const phone = await subscribe(ntfy.url, topic, NTFY_TOKEN);
    cleanups.push(async () => phone.close());
    return { client, root, server, executor, ntfy, push, phone, metricsUrl, close };
  } catch (error) {
    await close();
    throw error;
  }
}
