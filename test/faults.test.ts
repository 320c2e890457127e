/**
 * Crash tests with real processes: the executor, the control worker and the Temporal dev
 * server (SQLite file) are SIGKILLed mid-plan and restarted. Every plan completes, no approved
 * step starts twice (each step appends to a counter file in the workspace), no approval is lost.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { generateKeyPair } from '../core/keys.js';
import { openPairing, pairRoot } from '../services/devices.js';
import { refusalOf } from '../services/errors.js';
import { decide, planView, submitPlan } from '../services/plans.js';
import { startDevServer, type DevServer } from '../services/temporal-server.js';
import { statePaths, type Config } from '../workers/config.js';
import { loadOrCreateKeyFile } from '../workers/key-file.js';
import { freePort } from './support/ports.js';
import { WorkerProcess } from './support/processes.js';

let dir: string;
let server: DevServer;
let config: Config;
let port: number;
let connection: Connection;
let client: Client;
let control: WorkerProcess;
let executor: WorkerProcess;
const root = { ...generateKeyPair(), name: 'fault phone' };

async function startServer(): Promise<void> {
  server = await startDevServer({
    dbFile: join(dir, 'temporal.sqlite'),
    port,
    logFile: join(dir, 'temporal.log'),
  });
}

/** Approves through outages: retries until the workflow answers; "already applied" counts as done. */
async function approveDespiteOutage(planId: string, step: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      await decide(client, root, planId, step, { decision: 'approve' });
      return;
    } catch (error) {
      const code = refusalOf(error)?.code ?? (error as { code?: string }).code;
      if (code === 'duplicate_approver' || code === 'not_awaiting') return;
      if (Date.now() > deadline) throw error;
      await sleep(300);
    }
  }
}

async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

const statusOf = async (planId: string, step: string) =>
  (await planView(client, planId)).steps.find((s) => s.path === step)?.status;

async function resultOf(workflowId: string) {
  return waitUntil(
    async () =>
      (await client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED' || undefined,
    `${workflowId} to complete`,
    180_000,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'countersign-faults-'));
  port = await freePort();
  await startServer();
  config = { home: join(dir, 'home'), temporalAddress: server.address, namespace: 'default' };
  control = new WorkerProcess('control', config, dir);
  executor = new WorkerProcess('executor', config, dir);
  await loadOrCreateKeyFile(statePaths(config.home).policyKey, 'policy');
  await control.start();
  await executor.start();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: 'default' });
  const policy = await loadOrCreateKeyFile(statePaths(config.home).policyKey, 'policy');
  const code = await waitUntil(() => openPairing(client, policy.publicKey), 'the registry workflow');
  await pairRoot(client, root, code, statePaths(config.home).pinnedRoot);
});

afterAll(async () => {
  await control?.kill('SIGTERM');
  await executor?.kill('SIGTERM');
  await connection?.close();
  await server?.stop();
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
});

const counterOf = async (planId: string) =>
  (await readFile(join(statePaths(config.home).workspaces, planId, 'counter'), 'utf8')).trim().split('\n');

describe('crashes', () => {
  it('SIGKILL of the executor mid-step: the restarted executor re-attaches and the step runs once', async () => {
    const plan = {
      name: 'executor-crash',
      steps: [{ id: 'work', run: 'echo work >> counter; sleep 4; echo finished' }],
    };
    const { planId, workflowId } = await submitPlan(client, plan, { proposer: 'test' });
    await waitUntil(
      async () => (await statusOf(planId, 'work')) === 'awaiting_approval' || undefined,
      'the gate',
    );
    await approveDespiteOutage(planId, 'work');
    await waitUntil(async () => (await counterOf(planId)).length > 0 || undefined, 'the step to start');
    await executor.kill();
    await sleep(1_000);
    await executor.start();
    await resultOf(workflowId);
    const view = await planView(client, planId);
    const step = view.steps[0]!;
    expect(step.status).toBe('succeeded');
    expect(step.result?.outputTail).toContain('finished');
    expect(step.result?.attachCount).toBeGreaterThanOrEqual(2);
    expect(await counterOf(planId)).toEqual(['work']);
  });

  it('SIGKILL of the control worker while a step runs and while a gate waits: nothing is lost', async () => {
    const plan = {
      name: 'control-crash',
      steps: [
        { id: 'first', run: 'echo first >> counter; sleep 3' },
        { id: 'second', run: 'echo second >> counter' },
      ],
    };
    const { planId, workflowId } = await submitPlan(client, plan, { proposer: 'test' });
    await waitUntil(
      async () => (await statusOf(planId, 'first')) === 'awaiting_approval' || undefined,
      'the first gate',
    );
    await approveDespiteOutage(planId, 'first');
    await waitUntil(async () => (await counterOf(planId)).length > 0 || undefined, 'the first step to start');
    await control.kill();
    await sleep(4_000); // the step finishes while no control worker is alive
    await control.start();
    await waitUntil(
      async () => (await statusOf(planId, 'second')) === 'awaiting_approval' || undefined,
      'the second gate',
    );
    await approveDespiteOutage(planId, 'second');
    await control.kill(); // the approval was accepted: a crash right after must not lose it
    await control.start();
    await resultOf(workflowId);
    const view = await planView(client, planId);
    expect(view.steps.map((s) => s.approvals.length)).toEqual([1, 1]);
    expect(await counterOf(planId)).toEqual(['first', 'second']);
  });

  it('SIGKILL of the Temporal dev server at random points: plans resume from the SQLite file', async () => {
    let seed = 20261125;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const steps = ['a', 'b', 'c', 'd'].map((id) => ({ id, run: `echo ${id} >> counter; sleep 1` }));
    const plans = await Promise.all(
      [0, 1].map(() => submitPlan(client, { name: 'server-crash', steps }, { proposer: 'test' })),
    );
    for (const id of ['a', 'b', 'c', 'd']) {
      for (const plan of plans) {
        await waitUntil(
          async () => (await statusOf(plan.planId, id)) === 'awaiting_approval' || undefined,
          `gate ${id}`,
        );
        await approveDespiteOutage(plan.planId, id);
      }
      await sleep(random() * 1_500);
      await server.stop('SIGKILL');
      await sleep(500);
      await startServer();
    }
    for (const plan of plans) {
      await resultOf(plan.workflowId);
      expect(await counterOf(plan.planId)).toEqual(['a', 'b', 'c', 'd']);
      const view = await planView(client, plan.planId);
      expect(view.steps.every((s) => s.approvals.length === 1 && s.status === 'succeeded')).toBe(true);
    }
  });
});
