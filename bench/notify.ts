/**
 * Gate-notice benchmark, one run on this machine: a real Temporal dev server, the control worker
 * in this process (so its notifier can trust the local Web Push endpoint's certificate, as in
 * test/notify-delivery.test.ts), one paired device with ntfy and Web Push on, and on the far side
 * of each channel the local servers from test/support: an ntfy-protocol server (the real ntfy
 * cannot be installed here) read by a streaming subscriber, and a Web Push endpoint that decrypts.
 * Every plan is one gate, `{ id: 'checkpoint', gate: 'go?' }`, denied once both notices arrived,
 * so plans never pile up. The executor (its own process, jail) only releases each ended plan's
 * workspace.
 *   1. gate reached (the step's awaitingSince) → the ntfy subscriber receives the notice, p50/p99
 *      (target p99 < 500 ms), and gates per second, BENCH_NOTIFY_CONCURRENCY plans at a time;
 *   2. gate reached → the Web Push request arrives at the endpoint, p50/p99, the same gates.
 *   Baseline in the same run: (1) and (2) one plan at a time.
 *   3. where the time goes: the notice activity's history event times, when each server saw the
 *      request, CPU and event-loop delay per run, and the registry and settings reads the notifier
 *      makes per notice, timed alone and while BENCH_NOTIFY_LOAD_GATES more gates run;
 *   4. resident memory of this process (control worker, local servers, bench) around the runs.
 * Knobs: BENCH_NOTIFY_GATES (200), BENCH_NOTIFY_CONCURRENCY (4), BENCH_NOTIFY_WARMUP (10),
 * BENCH_NOTIFY_LOAD_GATES (40).
 */
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { gateTag } from '../core/notify/notice.js';
import type { Notice } from '../core/notify/types.js';
import { registryView } from '../services/devices.js';
import { readNotifySettings } from '../services/notify/settings.js';
import { decide, submitPlan } from '../services/plans.js';
import { breakdown, clock, cpuSeconds, scrape, type GateSample } from './notify-probes.js';
import { startNoticeStack, type NoticeStack } from './notify-stack.js';
import { line, summary, treeRssKiB } from './stats.js';

const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const GATES = knob('BENCH_NOTIFY_GATES', 200);
const CONCURRENCY = knob('BENCH_NOTIFY_CONCURRENCY', 4);
const WARMUP = knob('BENCH_NOTIFY_WARMUP', 10);
const LOAD_GATES = knob('BENCH_NOTIFY_LOAD_GATES', 40);
const READ_SAMPLES = 100;
const TARGET_P99_MS = 500;
const STEP = 'checkpoint';
const PLAN = { name: 'bench-notify', steps: [{ id: STEP, gate: 'go?' }] };

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

const isGateNotice = (payload: unknown, tag: string) =>
  (payload as Notice | undefined)?.tag === tag && (payload as Notice).kind === 'gate';

/** One plan: submitted, its gate notice awaited on both channels, then denied and ended. */
async function runGate(stack: NoticeStack): Promise<GateSample> {
  const { client, phone, push } = stack;
  const { planId, workflowId } = await submitPlan(client, PLAN, { proposer: 'bench' });
  const tag = gateTag(workflowId, STEP);
  const [heard, pushed] = await Promise.all([
    phone.next((e) => e.event === 'message' && e.sequence_id === tag, 30_000),
    push.waitFor((d) => isGateNotice(d.payload, tag), 30_000),
  ]);
  const { step } = await decide(client, stack.root, planId, STEP, { decision: 'deny' });
  await client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined);
  if (!step.awaitingSince) throw new Error(`${workflowId}: the gate was shown without awaitingSince`);
  return {
    workflowId,
    tag,
    gateAt: Date.parse(step.awaitingSince),
    ntfyAt: heard.receivedAt,
    pushAt: pushed.receivedAt,
  };
}

interface GateRun {
  samples: GateSample[];
  seconds: number;
  /** CPU seconds used during the run, by process. */
  cpu: { self: number; temporal: number; executor: number };
  /** This process's event-loop delay during the run (ms): the activity, the servers and the driver share it. */
  loopDelay: { p50: number; p99: number; max: number };
  loadAtEnd: number;
  /** SDK metric sums and counts over the run (see `scrape`). */
  metrics: Map<string, number>;
}

async function runGates(stack: NoticeStack, total: number, concurrency: number): Promise<GateRun> {
  const samples: GateSample[] = [];
  let started = 0;
  const loop = monitorEventLoopDelay({ resolution: 5 });
  const pids = [stack.server.process.pid, stack.executor.child?.pid];
  const [temporal0, executor0] = await Promise.all(pids.map(cpuSeconds));
  const metrics0 = await scrape(stack.metricsUrl);
  const self0 = process.cpuUsage();
  loop.enable();
  const t0 = clock();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        samples.push(await runGate(stack));
      }
    }),
  );
  const seconds = (clock() - t0) / 1000;
  loop.disable();
  const self = process.cpuUsage(self0);
  const [temporal1, executor1] = await Promise.all(pids.map(cpuSeconds));
  const metrics = await scrape(stack.metricsUrl);
  for (const [key, value] of metrics0) metrics.set(key, (metrics.get(key) ?? 0) - value);
  return {
    samples,
    seconds,
    cpu: {
      self: (self.user + self.system) / 1e6,
      temporal: temporal1! - temporal0!,
      executor: executor1! - executor0!,
    },
    loopDelay: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    loadAtEnd: loadavg()[0]!,
    metrics,
  };
}

/** The reads `Notifier.notifyGate` makes before each send, timed alone on an idle stack. */
async function timeReads(client: Client) {
  const time = async (read: () => Promise<unknown>) => {
    const samples: number[] = [];
    for (let i = 0; i < READ_SAMPLES; i++) {
      const t0 = clock();
      await read();
      samples.push(clock() - t0);
    }
    return samples;
  };
  return {
    registry: await time(() => registryView(client)),
    settings: await time(() => readNotifySettings(client)),
    both: await time(() => Promise.all([registryView(client), readNotifySettings(client)])),
  };
}

/** The same reads timed back to back while gates run `CONCURRENCY` at a time. */
async function readsUnderLoad(stack: NoticeStack): Promise<{ reads: number[]; run: GateRun }> {
  const reads: number[] = [];
  let running = true;
  const prober = (async () => {
    while (running) {
      const t0 = clock();
      await Promise.all([registryView(stack.client), readNotifySettings(stack.client)]);
      reads.push(clock() - t0);
      await sleep(50);
    }
  })();
  const run = await runGates(stack, LOAD_GATES, CONCURRENCY);
  running = false;
  await prober;
  return { reads, run };
}

function report(label: string, run: GateRun, concurrency: number) {
  const ntfy = run.samples.map((s) => s.ntfyAt - s.gateAt);
  const push = run.samples.map((s) => s.pushAt - s.gateAt);
  console.log(`\n${label}: ${run.samples.length} gates, ${concurrency} plan(s) at a time`);
  console.log(line(`  gate reached → ntfy subscriber receives`, ntfy));
  console.log(line(`  gate reached → Web Push request arrives`, push));
  console.log(
    `${'  throughput (submit → both notices → deny → ended)'.padEnd(52)} ${(run.samples.length / run.seconds).toFixed(2)} gates/s over ${run.seconds.toFixed(1)} s`,
  );
  const cores = (cpu: number) => `${cpu.toFixed(1)} s (${(cpu / run.seconds).toFixed(2)} cores)`;
  console.log(
    `  CPU: this process ${cores(run.cpu.self)}, Temporal server ${cores(run.cpu.temporal)}, ` +
      `executor ${cores(run.cpu.executor)}; 1-min load at the end ${run.loadAtEnd.toFixed(2)}`,
  );
  const { p50, p99, max } = run.loopDelay;
  console.log(
    `  event-loop delay of this process: p50=${p50.toFixed(1)}ms p99=${p99.toFixed(1)}ms max=${max.toFixed(1)}ms`,
  );
  const mean = (name: string, kind = '') => {
    const count = run.metrics.get(`${name}_count|${kind}`) ?? 0;
    const sum = run.metrics.get(`${name}_sum|${kind}`) ?? 0;
    return `${count ? (sum / count).toFixed(1) : '-'} ms (n=${count})`;
  };
  console.log('  SDK worker metrics, means over this run (queries count as workflow tasks):');
  console.log(
    `    workflow task held by the worker: plan ${mean('workflow_task_execution_latency', 'planWorkflow')}, ` +
      `registry ${mean('workflow_task_execution_latency', 'deviceRegistryWorkflow')}, ` +
      `settings ${mean('workflow_task_execution_latency', 'notifySettingsWorkflow')}`,
  );
  console.log(
    `    workflow task schedule-to-start ${mean('workflow_task_schedule_to_start_latency')}, ` +
      `RespondWorkflowTaskCompleted ${mean('request_latency', 'RespondWorkflowTaskCompleted')}, ` +
      `gateReached activity ${mean('activity_execution_latency', 'gateReached')}`,
  );
  return ntfy;
}

async function main(): Promise<void> {
  const startedAt = clock();
  const clockOffsetAtStart = clock() - Date.now();
  const rssAtStart = process.memoryUsage.rss();
  console.log(
    `Countersign gate-notice benchmark — ${new Date().toISOString()} — node ${process.version}, ` +
      `${cpus().length} cores, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  console.log(
    'ntfy side: the local ntfy-protocol server of test/support (the real ntfy cannot be installed here), ' +
      'a streaming subscriber; Web Push side: the local endpoint that decrypts. Both in this process, ' +
      'with the control worker.',
  );
  // services/temporal-server.ts caps the dev server's Go heap unless GOMEMLIMIT is set.
  console.log(
    `Temporal dev server GOMEMLIMIT=${process.env.GOMEMLIMIT ?? '512MiB (its default, services/temporal-server.ts)'}`,
  );
  const stack = await startNoticeStack();
  try {
    await runGates(stack, WARMUP, 1);
    const before = process.memoryUsage();
    let peakRss = before.rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100);
    const concurrent = await runGates(stack, GATES, CONCURRENCY);
    const sequential = await runGates(stack, GATES, 1);
    clearInterval(sampler);
    const after = process.memoryUsage();

    const ntfy = report(`1–2. concurrent`, concurrent, CONCURRENCY);
    const { p99 } = summary(ntfy);
    console.log(
      `  target: gate reached → ntfy subscriber p99 < ${TARGET_P99_MS} ms on this machine: ` +
        `${p99 < TARGET_P99_MS ? 'holds' : 'does NOT hold'} (p99 ${p99.toFixed(1)} ms)`,
    );
    report('baseline, sequential', sequential, 1);

    console.log('\n3. where the time goes, per notice (history event times; servers’ receive times)');
    console.log(`  concurrent (${CONCURRENCY} at a time)`);
    for (const row of await breakdown(stack, concurrent.samples)) console.log(row);
    console.log('  sequential');
    for (const row of await breakdown(stack, sequential.samples)) console.log(row);
    const reads = await timeReads(stack.client);
    console.log(`  the notifier's reads per notice, timed alone (idle stack, ${READ_SAMPLES} each)`);
    console.log(line('    registryView (one query)                 ', reads.registry));
    console.log(line('    readNotifySettings (one query)                 ', reads.settings));
    console.log(line('    both in parallel, as notifyGate does', reads.both));
    const loaded = await readsUnderLoad(stack);
    console.log(
      `  the same two reads while ${LOAD_GATES} more gates run ${CONCURRENCY} at a time ` +
        `(${(loaded.run.samples.length / loaded.run.seconds).toFixed(2)} gates/s)`,
    );
    console.log(line('    both in parallel, under load', loaded.reads));

    const temporalRss = await treeRssKiB(stack.server.process.pid!);
    console.log('\n4. memory of this process (control worker in-process + local servers + bench driver)');
    console.log(
      `  rss at start ${mib(rssAtStart)}, after start-up and ${WARMUP} warm-up gates ${mib(before.rss)}`,
    );
    console.log(
      `  rss after ${2 * GATES} measured gates ${mib(after.rss)} (peak ${mib(peakRss)}, ` +
        `${after.rss >= before.rss ? '+' : ''}${mib(after.rss - before.rss)}); ` +
        `heap used ${mib(before.heapUsed)} → ${mib(after.heapUsed)}`,
    );
    console.log(`  Temporal dev server (own process) rss ${(temporalRss.total / 1024).toFixed(1)} MiB`);

    console.log(
      `\nnotes: awaitingSince has ms resolution (each figure from it may read up to 1 ms high); ` +
        `receivedAt clock − Date.now() ${clockOffsetAtStart.toFixed(2)} ms at start, ` +
        `${(clock() - Date.now()).toFixed(2)} ms at the end; ` +
        `run time ${((clock() - startedAt) / 1000).toFixed(1)} s.`,
    );
  } finally {
    await stack.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
