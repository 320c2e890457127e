/**
 * Countersign benchmarks, one run on this machine, against a real Temporal dev server and the
 * real worker processes (started the way `countersign up` starts them):
 *   1. approval latency: signed approval submitted → step process started (jail), p50/p99
 *   2. plan throughput: single auto-approved `true` step plans completed per second, sustained
 *   3. idle resident memory of the whole embedded stack (`countersign up`), by process
 * Baseline in the same run: the bare Temporal Update round trip inside (1).
 * Knobs: BENCH_APPROVALS (500), BENCH_THROUGHPUT_SECONDS (60), BENCH_CONCURRENCY (8).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { signApproval } from '../core/approval/approval.js';
import { generateKeyPair } from '../core/keys.js';
import { openPairing, pairRoot, registryView } from '../services/devices.js';
import { planView, submitPlan } from '../services/plans.js';
import { startDevServer } from '../services/temporal-server.js';
import { freePort } from '../test/support/ports.js';
import { WorkerProcess } from '../test/support/processes.js';
import { PROJECT_ROOT, statePaths, type Config } from '../workers/config.js';
import { loadOrCreateKeyFile } from '../workers/key-file.js';
import { approveUpdate } from '../workflows/messages.js';
import { RunDir } from '../sandbox/runner/run-dir.js';
import { line, treeRssKiB } from './stats.js';

const APPROVALS = Number(process.env.BENCH_APPROVALS ?? 500);
const THROUGHPUT_SECONDS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 60);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const STEPS_PER_PLAN = 25;

async function until<T>(probe: () => Promise<T | undefined>, pauseMs = 2): Promise<T> {
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(pauseMs);
  }
}

async function approvalLatency(client: Client, root: ReturnType<typeof generateKeyPair>, runsDir: string) {
  const startLatency: number[] = [];
  const updateRoundTrip: number[] = [];
  const { records } = await registryView(client);
  const steps = Array.from({ length: STEPS_PER_PLAN }, (_, i) => ({ id: `s${i}`, run: 'true' }));
  while (startLatency.length < APPROVALS) {
    const { planId, workflowId } = await submitPlan(
      client,
      { name: 'bench-approval', steps },
      { proposer: 'bench' },
    );
    const handle = client.workflow.getHandle(workflowId);
    for (const { id } of steps) {
      if (startLatency.length >= APPROVALS) break;
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
      updateRoundTrip.push(Date.now() - t0);
      // Read the runner's own record from the executor's run directory: no extra load on Temporal.
      const run = new RunDir(runsDir, { workflowId, stepPath: id, digest: step.digest });
      const started = await until(
        async () => JSON.parse(await readFile(run.path('started.json'), 'utf8')) as { startedAtMs: number },
        1,
      );
      startLatency.push(started.startedAtMs - t0);
    }
    await handle.cancel().catch(() => undefined);
  }
  return { startLatency, updateRoundTrip };
}

async function throughput(client: Client) {
  const plan = {
    name: 'bench-throughput',
    policy: { autoApprove: [{ run: 'true' }] },
    steps: [{ id: 'only', run: 'true', approval: 'auto' }],
  };
  const endAt = Date.now() + THROUGHPUT_SECONDS * 1000;
  const latencies: number[] = [];
  let failures = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < endAt) {
        const t0 = Date.now();
        try {
          const { workflowId } = await submitPlan(client, plan, { proposer: 'bench' });
          await client.workflow.getHandle(workflowId).result();
          if (Date.now() <= endAt) latencies.push(Date.now() - t0);
        } catch {
          failures++;
        }
      }
    }),
  );
  return {
    completed: latencies.length,
    perSecond: latencies.length / THROUGHPUT_SECONDS,
    latencies,
    failures,
  };
}

async function idleMemory(): Promise<{ totalMiB: number; rows: string[] }> {
  const home = await mkdtemp(join(tmpdir(), 'countersign-bench-up-'));
  const port = await freePort();
  const env = {
    ...process.env,
    COUNTERSIGN_HOME: home,
    TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    COUNTERSIGN_TEMPORAL_UI_PORT: String(await freePort()),
  };
  const cli = join(PROJECT_ROOT, 'bin', 'countersign');
  try {
    await promisify(execFile)(cli, ['up'], { env, timeout: 180_000 });
    // Idle means no plan activity: start-up work has settled and the warm spare runner, which
    // lives only while steps start, has been retired (after 30 s).
    await sleep(45_000);
    const stack = JSON.parse(await readFile(statePaths(home).stackFile, 'utf8')) as { supervisorPid: number };
    const rss = await treeRssKiB(stack.supervisorPid);
    const rows = rss.byProcess
      .sort((a, b) => b.rssKiB - a.rssKiB)
      .map((p) => `    ${String(p.pid).padEnd(8)} ${p.name.padEnd(16)} ${(p.rssKiB / 1024).toFixed(1)} MiB`);
    return { totalMiB: rss.total / 1024, rows };
  } finally {
    await promisify(execFile)(cli, ['down'], { env, timeout: 60_000 }).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'countersign-bench-'));
  const server = await startDevServer({
    dbFile: join(dir, 'temporal.sqlite'),
    port: await freePort(),
    logFile: join(dir, 'temporal.log'),
  });
  const config: Config = { home: join(dir, 'home'), temporalAddress: server.address, namespace: 'default' };
  const workers = [new WorkerProcess('control', config, dir), new WorkerProcess('executor', config, dir)];
  const policy = await loadOrCreateKeyFile(statePaths(config.home).policyKey, 'policy');
  await Promise.all(workers.map((w) => w.start()));
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const root = { ...generateKeyPair(), name: 'bench' };
  try {
    const code = await until(() => openPairing(client, policy.publicKey), 200);
    await pairRoot(client, root, code, statePaths(config.home).pinnedRoot);
    // Warm up: bundle loaded, runners spawned, sticky caches filled.
    await throughputWarmup(client);

    console.log(
      `\nCountersign benchmarks — ${new Date().toISOString()} — node ${process.version}, 2-core machine, jail backend\n`,
    );
    const approvals = await approvalLatency(client, root, statePaths(config.home).runs);
    console.log(line('approval → step process started (target p50≤25 p99≤100)', approvals.startLatency));
    console.log(line('baseline: Temporal Update round trip (same approvals)', approvals.updateRoundTrip));

    const tp = await throughput(client);
    console.log(
      `${'plan throughput (1 auto-approved `true` step)'.padEnd(52)} ${tp.perSecond.toFixed(2)} plans/s over ${THROUGHPUT_SECONDS}s, ${CONCURRENCY} in flight, ${tp.completed} completed, ${tp.failures} failed`,
    );
    console.log(line('  submit → plan completed', tp.latencies));
  } finally {
    await connection.close();
    for (const w of workers) await w.kill('SIGTERM');
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const memory = await idleMemory();
  console.log(
    `${'idle resident memory, whole embedded stack (target ≤350)'.padEnd(52)} ${memory.totalMiB.toFixed(1)} MiB`,
  );
  console.log(memory.rows.join('\n'));
}

async function throughputWarmup(client: Client): Promise<void> {
  const plan = {
    name: 'warmup',
    policy: { autoApprove: [{ run: 'true' }] },
    steps: [{ id: 'only', run: 'true', approval: 'auto' }],
  };
  for (let i = 0; i < 5; i++) {
    const { workflowId } = await submitPlan(client, plan, { proposer: 'bench' });
    await client.workflow.getHandle(workflowId).result();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
