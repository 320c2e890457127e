/**
 * What the benchmarks share: a real Temporal dev server with the real worker processes (started
 * the way `countersign up` starts them) and a paired root device, the executor pinned to one
 * sandbox, and the approval-latency loop (signed approval submitted → step process started).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { signApproval } from '../core/approval/approval.js';
import { generateKeyPair } from '../core/keys.js';
import { openLocalPairing, pairRoot, registryView } from '../services/devices.js';
import type { GrantScope } from '../core/grants/grant.js';
import { grantRecordOf, issueGrant } from '../services/grants.js';
import { planView, submitPlan, type SubmittedPlan } from '../services/plans.js';
import { startDevServer, type DevServer } from '../services/temporal/server.js';
import { RunDir } from '../sandbox/runner/run-dir.js';
import { freePort } from '../test/support/ports.js';
import { WorkerProcess } from '../test/support/processes.js';
import { statePaths, type Config } from '../workers/config.js';
import { approveUpdate } from '../workflows/messages.js';

export type Sandbox = 'jail' | 'docker';

export async function until<T>(probe: () => Promise<T | undefined>, pauseMs = 2): Promise<T> {
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(pauseMs);
  }
}

export interface BenchStack {
  dir: string;
  server: DevServer;
  config: Config;
  paths: ReturnType<typeof statePaths>;
  client: Client;
  root: ReturnType<typeof generateKeyPair> & { name: string };
  control: WorkerProcess;
  executor: WorkerProcess;
  /** The sandbox the executor was last started in. */
  sandbox: Sandbox;
  /** (Re)starts the executor process in `sandbox` (a running one is stopped first). */
  startExecutor(sandbox?: Sandbox, stopSignal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

/**
 * WorkerProcess hands the executor this process's environment, read when it spawns: the sandbox
 * is set only for the length of that start, so nothing else started here inherits it.
 */
async function startIn(worker: WorkerProcess, sandbox: Sandbox): Promise<void> {
  const previous = process.env.COUNTERSIGN_SANDBOX;
  process.env.COUNTERSIGN_SANDBOX = sandbox;
  try {
    await worker.start();
  } finally {
    if (previous === undefined) delete process.env.COUNTERSIGN_SANDBOX;
    else process.env.COUNTERSIGN_SANDBOX = previous;
  }
}

/** Temporal, the control and executor workers and a paired root key, in a fresh temp folder. */
export async function startBenchStack(sandbox: Sandbox): Promise<BenchStack> {
  const dir = await mkdtemp(join(tmpdir(), 'countersign-bench-'));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const server = await startDevServer({
      dbFile: join(dir, 'temporal.sqlite'),
      port: await freePort(),
      logFile: join(dir, 'temporal.log'),
    });
    cleanups.push(() => server.stop());
    const config: Config = { home: join(dir, 'home'), temporalAddress: server.address, namespace: 'default' };
    const paths = statePaths(config.home);
    const control = new WorkerProcess('control', config, dir);
    const executor = new WorkerProcess('executor', config, dir);
    cleanups.push(
      () => control.kill('SIGTERM'),
      () => executor.kill('SIGTERM'),
    );
    await control.start();
    await startIn(executor, sandbox);
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection });
    const root = { ...generateKeyPair(), name: 'bench' };
    const code = await until(() => openLocalPairing(client, paths), 200);
    await pairRoot(client, root, code, paths.pinnedRoot);
    const stack: BenchStack = {
      dir,
      server,
      config,
      paths,
      client,
      root,
      control,
      executor,
      sandbox,
      async startExecutor(next = stack.sandbox, stopSignal = 'SIGTERM') {
        await executor.kill(stopSignal);
        stack.sandbox = next;
        await startIn(executor, next);
      },
      close,
    };
    return stack;
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * A plan of `steps` steps running `run`, each asking for a standing approval (`approval: auto`):
 * submitted with `submitAuto`, they run on the grant the bench's root device signed, no person.
 */
export function autoPlan(name: string, run: string, steps = 1) {
  return {
    name,
    steps: Array.from({ length: steps }, (_, i) => ({ id: `s${i}`, run, approval: 'auto' })),
  };
}

/** Grants issued per stack: command → the grant's signing (so concurrent submissions share one). */
const granted = new WeakMap<BenchStack, Map<string, Promise<unknown>>>();

/**
 * A standing approval for exactly `run`, signed once per stack by the bench's root device for
 * the plans it proposes (what a person does once before letting a command run unattended).
 * `scope` widens it to an agent's plans instead.
 */
export function grantRun(
  stack: BenchStack,
  run: string,
  scope: GrantScope = { device: stack.root.keyId },
): Promise<unknown> {
  const mine = granted.get(stack) ?? new Map<string, Promise<unknown>>();
  granted.set(stack, mine);
  const key = JSON.stringify([run, scope]);
  let signing = mine.get(key);
  if (!signing) {
    const record = grantRecordOf(
      { name: `bench: ${run}`.slice(0, 100), scope, covers: { kind: 'shell', command: run, match: 'exact' } },
      Date.now(),
    );
    signing = issueGrant(stack.client, stack.root, record);
    signing.catch(() => mine.delete(key));
    mine.set(key, signing);
  }
  return signing;
}

/**
 * Submits `plan` proposed and signed by the bench's root device (as `countersign plan run` does),
 * after granting each command of its `approval: auto` steps exactly: those steps then run on the
 * standing approval, without anyone approving them.
 */
export async function submitAuto(
  stack: BenchStack,
  plan: { name: string; steps: { run: string; approval?: string }[] },
  options: { planId?: string | undefined } = {},
): Promise<SubmittedPlan> {
  const runs = new Set(plan.steps.filter((s) => s.approval === 'auto').map((s) => s.run));
  await Promise.all([...runs].map((run) => grantRun(stack, run)));
  return submitPlan(stack.client, plan, {
    proposer: 'bench',
    planId: options.planId,
    signer: { key: stack.root, proposer: { device: stack.root.keyId } },
  });
}

/** Runs `n` single-step `true` plans: bundle loaded, runners spawned, sticky caches filled. */
export async function warmup(stack: BenchStack, n = 5, planId?: () => string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const { workflowId } = await submitAuto(stack, autoPlan('warmup', 'true'), { planId: planId?.() });
    await stack.client.workflow.getHandle(workflowId).result();
  }
}

export interface ApprovalSample {
  /** The step's position in its plan: 0 is the first step (the one that prepares the workspace). */
  index: number;
  /** Signed approval submitted → the runner's started.json (just before it spawns the command). */
  startLatency: number;
  /** The bare Temporal Update round trip of that approval. */
  updateRoundTrip: number;
  approvedAtMs: number;
  run: RunDir;
}

/**
 * Approves the steps of manual-approval plans one by one, timing each from the signed approval
 * to the step's process start. A fully approved plan is waited for, so its workspace is released
 * before the next plan starts; the last, partly approved one is cancelled.
 */
export async function approvalLatency(
  stack: BenchStack,
  options: { samples: number; stepsPerPlan: number; run: string; planId?: () => string },
): Promise<ApprovalSample[]> {
  const { client, root } = stack;
  const samples: ApprovalSample[] = [];
  const { records } = await registryView(client);
  const steps = Array.from({ length: options.stepsPerPlan }, (_, i) => ({ id: `s${i}`, run: options.run }));
  while (samples.length < options.samples) {
    const { planId, workflowId } = await submitPlan(
      client,
      { name: 'bench-approval', steps },
      { proposer: 'bench', planId: options.planId?.() },
    );
    const handle = client.workflow.getHandle(workflowId);
    let approved = 0;
    for (const [index, { id }] of steps.entries()) {
      if (samples.length >= options.samples) break;
      const view = await until(async () => {
        const v = await planView(client, planId);
        return v.steps.find((s) => s.path === id)?.status === 'awaiting_approval' ? v : undefined;
      }, 10);
      const step = view.steps.find((s) => s.path === id)!;
      const envelope = signApproval(
        {
          workflowId,
          runId: view.runId,
          stepPath: id,
          stepDigest: step.digest,
          decision: 'approve',
          nowMs: Date.now(),
          nonce: randomBytes(18).toString('base64url'),
        },
        root,
      );
      const t0 = Date.now();
      await handle.executeUpdate(approveUpdate, { args: [{ envelope, deviceRecords: records }] });
      const updateRoundTrip = Date.now() - t0;
      approved++;
      // Read the runner's own record from the executor's run directory: no extra load on Temporal.
      const run = new RunDir(stack.paths.runs, {
        workflowId,
        runId: view.runId,
        stepPath: id,
        digest: step.digest,
      });
      const started = await until(
        async () => JSON.parse(await readFile(run.path('started.json'), 'utf8')) as { startedAtMs: number },
        1,
      );
      samples.push({ index, startLatency: started.startedAtMs - t0, updateRoundTrip, approvedAtMs: t0, run });
    }
    if (approved < steps.length) await handle.cancel().catch(() => undefined);
    await handle.result().catch(() => undefined);
  }
  return samples;
}
