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
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../test/support/ports.js';
import { PROJECT_ROOT, statePaths } from '../workers/config.js';
import {
  approvalLatency,
  autoPlan,
  startBenchStack,
  submitAuto,
  warmup,
  type BenchStack,
} from './harness.js';
import { line, treeRssKiB } from './stats.js';

const APPROVALS = Number(process.env.BENCH_APPROVALS ?? 500);
const THROUGHPUT_SECONDS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 60);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const STEPS_PER_PLAN = 25;

async function throughput(stack: BenchStack) {
  const plan = autoPlan('bench-throughput', 'true');
  const endAt = Date.now() + THROUGHPUT_SECONDS * 1000;
  const latencies: number[] = [];
  let failures = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < endAt) {
        const t0 = Date.now();
        try {
          const { workflowId } = await submitAuto(stack, plan);
          await stack.client.workflow.getHandle(workflowId).result();
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
    COUNTERSIGN_SANDBOX: 'jail',
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
  // The executor would pick Docker where it answers: these figures are the jail's (bench/docker.ts has Docker's).
  const stack = await startBenchStack('jail');
  try {
    await warmup(stack);

    console.log(
      `\nCountersign benchmarks — ${new Date().toISOString()} — node ${process.version}, 2-core machine, jail backend\n`,
    );
    const approvals = await approvalLatency(stack, {
      samples: APPROVALS,
      stepsPerPlan: STEPS_PER_PLAN,
      run: 'true',
    });
    console.log(
      line(
        'approval → step process started (target p50≤25 p99≤100)',
        approvals.map((a) => a.startLatency),
      ),
    );
    console.log(
      line(
        'baseline: Temporal Update round trip (same approvals)',
        approvals.map((a) => a.updateRoundTrip),
      ),
    );

    const tp = await throughput(stack);
    console.log(
      `${'plan throughput (1 auto-approved `true` step)'.padEnd(52)} ${tp.perSecond.toFixed(2)} plans/s over ${THROUGHPUT_SECONDS}s, ${CONCURRENCY} in flight, ${tp.completed} completed, ${tp.failures} failed`,
    );
    console.log(line('  submit → plan completed', tp.latencies));
  } finally {
    await stack.close();
  }
  const memory = await idleMemory();
  console.log(
    `${'idle resident memory, whole embedded stack (target ≤350)'.padEnd(52)} ${memory.totalMiB.toFixed(1)} MiB`,
  );
  console.log(memory.rows.join('\n'));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
