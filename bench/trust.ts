/**
 * What the executor's own trust costs (issue 14), measured on real stacks: each a Temporal dev
 * server with the real control worker and executor worker processes (jail), as `countersign up`
 * starts them.
 *   1. signed approval submitted → step process started, and → plan closed, for one-step plans
 *      on two stacks side by side in one run, interleaved: one whose executor signs each result and
 *      keeps its once-only ledger (the product), one whose executor is composed with the baseline
 *      trust of bench/baseline-trust.ts (neither; the executor key is revoked in its registry, so
 *      its plans expect no signed results and no signed close). BENCH_TRUST_SAMPLES (200) each.
 *   2. sustained throughput of one-step plans a standing approval approves, both stacks, in
 *      alternating blocks (A B B A), BENCH_TRUST_THROUGHPUT_SECONDS (20) each, 8 at a time; each
 *      executor's memory and the ledger on disk after it.
 *   3. `audit verify` of a plan of 992 steps (4 sub-plans, each a parallel group of 248: with its 8
 *      other nodes, the most a plan may hold, PLAN_LIMITS.maxNodes = 1,000), each step approved by
 *      the root device, exported with services/audit: export time, verify time (read, parse and
 *      verify, as `countersign audit verify` does) over BENCH_TRUST_VERIFY_RUNS (7) runs, memory,
 *      and the real CLI once. (Standing approvals cannot run it: each `approval: auto` step's
 *      activities carry the whole plan, so 248 scheduled at once pass Temporal's 4 MiB message
 *      limit and the plan is terminated, GrpcMessageTooLarge.)
 * And first, per operation in this process (µs): signing a result, checking one, and the ledger's
 * file operations.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { ExecutionLedger } from '../activities/execution-ledger.js';
import { signApproval } from '../core/approval/approval.js';
import { attestationSha256, resultClaims, resultProblem, signResult } from '../core/approval/attestation.js';
import { toBase64 } from '../core/bytes.js';
import { signDeviceRecord } from '../core/devices/records.js';
import { DeviceRegistry } from '../core/devices/registry.js';
import { keyPairFromSecret } from '../core/keys.js';
import type { PlanResult, StepResult } from '../core/plan/state.js';
import { stackProcessCommand } from '../cli/stack/processes.js';
import { exportBundle } from '../services/audit/bundle.js';
import { verifyBundle } from '../services/audit/verify.js';
import { registryView, revokeDevice } from '../services/devices.js';
import { planView, planViewTree, submitPlan } from '../services/plans.js';
import { RunDir } from '../sandbox/runner/run-dir.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { approveUpdate } from '../workflows/messages.js';
import { autoPlan, startBenchStack, submitAuto, until, warmup, type BenchStack } from './harness.js';
import { line, summary, treeRssKiB } from './stats.js';

const SAMPLES = Number(process.env.BENCH_TRUST_SAMPLES ?? 200);
const THROUGHPUT_SECONDS = Number(process.env.BENCH_TRUST_THROUGHPUT_SECONDS ?? 20);
const CONCURRENCY = 8;
const WARMUP = 5;
const VERIFY_RUNS = Number(process.env.BENCH_TRUST_VERIFY_RUNS ?? 7);
const SUB_PLANS = 4;
const PER_SUB_PLAN = 248;
const STEPS = SUB_PLANS * PER_SUB_PLAN;
const LARGE_PLAN_TIMEOUT_MS = 6 * 60_000;

/** One stack of the comparison, with the executor process that serves it. */
interface Side {
  label: string;
  stack: BenchStack;
  /** The executor process (the stack's own, or the baseline started here). */
  executorPid: () => number | undefined;
  records: Awaited<ReturnType<typeof registryView>>['records'];
  /** Plans submitted to it. */
  plans: number;
  lastWorkflowId?: string;
}

// ---------------------------------------------------------------------------------------------
// 0. per operation, in this process

async function microAsync(work: () => Promise<unknown>, n: number): Promise<number[]> {
  for (let i = 0; i < 50; i++) await work();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await work();
    out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return out;
}

async function operationCosts(): Promise<string[]> {
  const root = keyPairFromSecret(new Uint8Array(32).fill(1));
  const executor = keyPairFromSecret(new Uint8Array(32).fill(3));
  const at = '2030-01-01T00:00:00.000Z';
  const registry = DeviceRegistry.fromRecords([
    signDeviceRecord({ type: 'enroll-root', publicKey: toBase64(root.publicKey), name: 'root', at }, root),
    signDeviceRecord(
      { type: 'introduce', publicKey: toBase64(executor.publicKey), name: 'executor', role: 'executor', at },
      root,
    ),
  ]);
  const step = { workflowId: 'plan-bench', runId: 'r'.repeat(36), stepPath: 's0', digest: 'd'.repeat(64) };
  const result: StepResult = {
    exitCode: 0,
    signal: null,
    durationMs: 3,
    outputTail: 'ok\n'.repeat(1000),
    outputBytes: 3000,
    truncated: false,
    timedOut: false,
    backend: 'jail',
    startedAt: at,
    finishedAt: at,
    attachCount: 1,
    attempt: 1,
  };
  const signed = signResult(resultClaims(step, result), executor);
  if (resultProblem(signed, step, result, registry)) throw new Error('the bench result does not verify');
  const dir = await mkdtemp(join(tmpdir(), 'countersign-bench-ledger-'));
  try {
    const ledger = new ExecutionLedger(dir);
    let n = 0;
    const rows = [
      line(
        'sign a result (claims, Ed25519, hash for the close)',
        await microAsync(
          async () => attestationSha256(signResult(resultClaims(step, result), executor)),
          2000,
        ),
        'µs',
      ),
      line(
        'check a signed result (workflow, history, audit)',
        await microAsync(async () => resultProblem(signed, step, result, registry), 2000),
        'µs',
      ),
      line(
        'ledger: when did this plan end (not ended)',
        await microAsync(() => ledger.endOf('plan-bench'), 2000),
        'µs',
      ),
      line(
        'ledger: spend one approval nonce (new file)',
        await microAsync(() => ledger.spendNonces([`n${n++}`], `plan-bench/${n}`), 2000),
        'µs',
      ),
      line(
        'ledger: keep a signed result (new file)',
        await microAsync(() => ledger.recordResult(`plan-${n++}`, 's0', 'h'.repeat(64)), 2000),
        'µs',
      ),
    ];
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// the baseline executor

/**
 * Bundles a call of runBaselineExecutor next to the stack's own bundles (so its packages resolve)
 * and starts it with the real executor's node flags and exactly its environment, read from /proc
 * before the real one is stopped. Imported through `-e`, so the bundled workers/executor.ts does
 * not take itself for the process's main module.
 */
async function startBaselineExecutor(
  stack: BenchStack,
): Promise<{ child: ChildProcess; close: () => Promise<void> }> {
  const pid = stack.executor.child?.pid;
  if (!pid) throw new Error('the stack has no executor process to take the environment from');
  const env = Object.fromEntries(
    (await readFile(`/proc/${pid}/environ`, 'utf8'))
      .split('\0')
      .filter(Boolean)
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
  await stack.executor.kill('SIGTERM');
  const bundle = join(
    PROJECT_ROOT,
    'node_modules',
    '.cache',
    'countersign',
    `bench-baseline-executor-${process.pid}.mjs`,
  );
  await build({
    stdin: {
      contents: "import { runBaselineExecutor } from './bench/baseline-trust.ts';\nrunBaselineExecutor();\n",
      resolveDir: PROJECT_ROOT,
      loader: 'ts',
      sourcefile: 'bench-baseline-executor.ts',
    },
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
    banner: {
      js: "import { createRequire as __countersignRequire } from 'node:module'; const require = __countersignRequire(import.meta.url);",
    },
  });
  const { file, args } = await stackProcessCommand('executor');
  const log = openSync(join(stack.dir, 'baseline-executor-worker.log'), 'a');
  const child = spawn(
    file,
    [...args.slice(0, -1), '-e', `import(${JSON.stringify(pathToFileURL(bundle).href)})`],
    { cwd: PROJECT_ROOT, stdio: ['ignore', log, log], env },
  );
  return {
    child,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(15_000)]);
      }
      await rm(bundle, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 1. approval → step started, → plan closed

interface Sample {
  update: number;
  started: number;
  closed: number;
  /** The step's process ended → the plan closed: the result signed, checked, and the close signed. */
  afterEnd: number;
}

/** One one-step plan, approved by the root device as soon as its gate opens. */
async function approveOne(side: Side): Promise<Sample> {
  const { client, root, paths } = side.stack;
  const { planId, workflowId } = await submitPlan(
    client,
    { name: 'bench-trust', steps: [{ id: 's0', run: 'true' }] },
    { proposer: 'bench' },
  );
  side.plans++;
  const view = await until(async () => {
    const v = await planView(client, planId);
    return v.steps[0]?.status === 'awaiting_approval' ? v : undefined;
  }, 5);
  const step = view.steps[0]!;
  const envelope = signApproval(
    {
      workflowId,
      runId: view.runId,
      stepPath: step.path,
      stepDigest: step.digest,
      decision: 'approve',
      nowMs: Date.now(),
      nonce: randomBytes(18).toString('base64url'),
    },
    root,
  );
  const handle = client.workflow.getHandle(workflowId);
  const t0 = Date.now();
  await handle.executeUpdate(approveUpdate, { args: [{ envelope, deviceRecords: side.records }] });
  const update = Date.now() - t0;
  const run = new RunDir(paths.runs, {
    workflowId,
    runId: view.runId,
    stepPath: step.path,
    digest: step.digest,
  });
  const started = await until(
    async () => JSON.parse(await readFile(run.path('started.json'), 'utf8')) as { startedAtMs: number },
    1,
  );
  const result = (await handle.result()) as PlanResult;
  const closedAtMs = Date.now();
  if (result.status !== 'succeeded') throw new Error(`${side.label}: plan ${planId} ended ${result.status}`);
  const ended = JSON.parse(await readFile(run.path('result.json'), 'utf8')) as { finishedAtMs: number };
  side.lastWorkflowId = workflowId;
  return {
    update,
    started: started.startedAtMs - t0,
    closed: closedAtMs - t0,
    afterEnd: closedAtMs - ended.finishedAtMs,
  };
}

/** Whether the side's last plan carries a signed result (the check that each side is what it says). */
async function signedResultOf(side: Side): Promise<boolean> {
  const view = await planView(side.stack.client, side.lastWorkflowId!);
  return view.steps[0]?.result?.attestation !== undefined;
}

// ---------------------------------------------------------------------------------------------
// 2. throughput

async function throughput(side: Side, seconds: number): Promise<{ latencies: number[]; failures: number }> {
  const plan = autoPlan('bench-trust-throughput', 'true');
  const endAt = Date.now() + seconds * 1000;
  const latencies: number[] = [];
  let failures = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < endAt) {
        const t0 = Date.now();
        try {
          const { workflowId } = await submitAuto(side.stack, plan);
          side.plans++;
          const result = (await side.stack.client.workflow.getHandle(workflowId).result()) as PlanResult;
          if (result.status !== 'succeeded') failures++;
          else if (Date.now() <= endAt) latencies.push(Date.now() - t0);
        } catch {
          failures++;
        }
      }
    }),
  );
  return { latencies, failures };
}

async function diskUse(dir: string): Promise<{ files: number; kib: number }> {
  let files = 0;
  let bytes = 0;
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const entry of entries) {
    const info = await stat(join(dir, entry)).catch(() => undefined);
    if (info?.isFile()) {
      files++;
      // What the file system spends on it: one block at least per small file.
      bytes += info.blocks * 512;
    }
  }
  return { files, kib: bytes / 1024 };
}

// ---------------------------------------------------------------------------------------------
// 3. audit of a 996-step plan

/**
 * Runs a plan of SUB_PLANS sub-plans in sequence, each one parallel group of PER_SUB_PLAN `true`
 * steps, the root device approving each step as its gate opens (up to 8 approvals in flight;
 * Temporal takes 10 at most per workflow).
 *
 * Why sub-plans: one workflow of ~1,000 steps wedges. When it continues as new it carries every
 * step's record (approvals, signed result), past ~900 steps more than Temporal's 2 MiB payload
 * limit, and its workflow task then fails for ever (PayloadsTooLarge). Step ids are short because
 * a plan's open gates are listed in one search attribute Temporal caps at 2 KiB (249 ids like
 * `g0s123` pass it, and the plan is terminated).
 */
async function runLargePlan(stack: BenchStack): Promise<{ workflowId: string; ranMs: number; ran: number }> {
  const { client, root } = stack;
  const plan = {
    name: 'bench-audit',
    steps: Array.from({ length: SUB_PLANS }, (_, g) => ({
      id: `p${g}`,
      plan: {
        name: `bench-audit-${g}`,
        steps: [
          {
            parallel: Array.from({ length: PER_SUB_PLAN }, (_, i) => ({
              id: `s${i.toString(36)}`,
              run: 'true',
            })),
            failFast: false,
          },
        ],
      },
    })),
  };
  const t0 = Date.now();
  const { planId, workflowId } = await submitPlan(client, plan, {
    proposer: 'bench',
    signer: { key: root, proposer: { device: root.keyId } },
  });
  const { records } = await registryView(client);
  let result: PlanResult | undefined;
  let failure: unknown;
  const finished = client.workflow
    .getHandle(workflowId)
    .result()
    .then(
      (r) => void (result = r as PlanResult),
      (error: unknown) => void (failure = error ?? 'failed'),
    );
  const asked = new Set<string>();
  const deadline = Date.now() + LARGE_PLAN_TIMEOUT_MS;
  while (result === undefined) {
    if (failure) throw failure;
    if (Date.now() > deadline)
      throw new Error(
        `the ${STEPS}-step plan ${planId} did not finish in ${LARGE_PLAN_TIMEOUT_MS / 60_000} min`,
      );
    const tree = await planViewTree(client, planId).catch(() => undefined);
    const views = tree ? [tree.view, ...tree.children.map((c) => c.view)] : [];
    const waiting = views.flatMap((view) =>
      view.steps
        .filter((s) => s.status === 'awaiting_approval' && !asked.has(`${view.workflowId}/${s.path}`))
        .map((step) => ({ view, step })),
    );
    for (const { view, step } of waiting) asked.add(`${view.workflowId}/${step.path}`);
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let next = waiting.shift(); next; next = waiting.shift()) {
          const { view, step } = next;
          const envelope = signApproval(
            {
              workflowId: view.workflowId,
              runId: view.runId,
              stepPath: step.path,
              stepDigest: step.digest,
              decision: 'approve',
              nowMs: Date.now(),
              nonce: randomBytes(18).toString('base64url'),
            },
            root,
          );
          // Refused (the run continued as new under it, say): asked again at the next look.
          await client.workflow
            .getHandle(view.workflowId)
            .executeUpdate(approveUpdate, { args: [{ envelope, deviceRecords: records }] })
            .catch(() => asked.delete(`${view.workflowId}/${step.path}`));
        }
      }),
    );
    if (!waiting.length) await Promise.race([finished, sleep(100)]);
  }
  const ranMs = Date.now() - t0;
  const children = await Promise.all(
    result.subPlans.map(
      async (sub) => (await client.workflow.getHandle(sub.workflowId).result()) as PlanResult,
    ),
  );
  const ran = children.flatMap((c) => c.steps).filter((s) => s.status === 'succeeded').length;
  if (result.status !== 'succeeded' || ran !== STEPS)
    throw new Error(`the ${STEPS}-step plan ended ${result.status} with ${ran} steps succeeded`);
  return { workflowId, ranMs, ran };
}

async function auditOfLargePlan(stack: BenchStack): Promise<string[]> {
  const out: string[] = [];
  const { workflowId, ranMs, ran } = await runLargePlan(stack);
  out.push(
    `ran ${ran} steps (${SUB_PLANS} sub-plans in sequence, each a parallel group of ${PER_SUB_PLAN}, each step approved by the root device) in ${(ranMs / 1000).toFixed(1)} s: ${((ran * 1000) / ranMs).toFixed(1)} steps/s`,
  );

  const exports: number[] = [];
  let bundle: Awaited<ReturnType<typeof exportBundle>> | undefined;
  for (let i = 0; i < 3; i++) {
    const e0 = performance.now();
    bundle = await exportBundle(stack.client, workflowId, { pinnedRootKeyId: stack.root.keyId });
    exports.push(performance.now() - e0);
  }
  const file = join(stack.dir, 'bench-audit.audit.json');
  await writeFile(file, `${JSON.stringify(bundle)}\n`);
  const size = (await stat(file)).size;
  const events = bundle!.manifest.workflows.reduce((n, w) => n + w.events, 0);
  const runs = bundle!.manifest.workflows.reduce((n, w) => n + w.runs, 0);
  out.push(
    `bundle: ${(size / 1024 / 1024).toFixed(1)} MiB, ${runs} runs (continue-as-new), ${events} events, ${bundle!.approvals.length} approvals, ${bundle!.deviceRecords.length} device records`,
  );
  out.push(line('audit export (services/audit, from the server)', exports));

  const verifies: number[] = [];
  const rssBefore = process.memoryUsage().rss;
  const peakBefore = process.resourceUsage().maxRSS;
  let heapAfter = 0;
  for (let i = 0; i < VERIFY_RUNS; i++) {
    const v0 = performance.now();
    const verdict = verifyBundle(JSON.parse(await readFile(file, 'utf8')), { rootKeyId: stack.root.keyId });
    verifies.push(performance.now() - v0);
    if (i === 0) heapAfter = process.memoryUsage().heapUsed;
    if (!verdict.ok)
      throw new Error(
        `the bundle does not verify: ${[...verdict.problems, ...verdict.steps.flatMap((s) => s.reasons)].slice(0, 5).join('; ')}`,
      );
    const ok = verdict.steps.filter((s) => s.verdict === 'ok').length;
    if (ok !== STEPS) throw new Error(`verify found ${ok} steps ok, not ${STEPS}`);
  }
  out.push(line('audit verify (read + parse + verify, in process)', verifies));
  const p50 = summary(verifies).p50;
  out.push(`  = ${((p50 * 1000) / STEPS).toFixed(0)} µs per step at p50`);
  out.push(
    `  memory: resident peak +${((process.resourceUsage().maxRSS - peakBefore) / 1024).toFixed(0)} MiB over ${(peakBefore / 1024).toFixed(0)} MiB, ` +
      `rss after ${(process.memoryUsage().rss / 1024 / 1024).toFixed(0)} MiB (was ${(rssBefore / 1024 / 1024).toFixed(0)}), heap after the first verify ${(heapAfter / 1024 / 1024).toFixed(0)} MiB`,
  );

  // The command a person runs: node start, tsx, the CLI, then the same verification.
  try {
    const { stderr } = await promisify(execFile)(
      '/usr/bin/time',
      [
        '-f',
        '%e %M',
        join(PROJECT_ROOT, 'bin', 'countersign'),
        'audit',
        'verify',
        file,
        '--root',
        stack.root.keyId,
      ],
      { env: { ...process.env, COUNTERSIGN_HOME: stack.config.home }, maxBuffer: 64 * 1024 * 1024 },
    );
    const [seconds, kib] = stderr.trim().split('\n').at(-1)!.split(' ');
    out.push(
      `countersign audit verify (the CLI, one run): ${Number(seconds).toFixed(2)} s wall, max resident ${(Number(kib) / 1024).toFixed(0)} MiB`,
    );
  } catch (error) {
    out.push(`countersign audit verify (the CLI): failed: ${(error as Error).message.split('\n')[0]}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const begun = Date.now();
  console.log('the executor trust, per operation (pure, this process):');
  for (const row of await operationCosts()) console.log(`  ${row}`);

  const withStack = await startBenchStack('jail');
  let baseline: Awaited<ReturnType<typeof startBaselineExecutor>> | undefined;
  let withoutStack: BenchStack | undefined;
  try {
    withoutStack = await startBenchStack('jail');
    // Without an executor key in force, plans expect no signed results and no signed close.
    const key = (await registryView(withoutStack.client)).devices.find(
      (d) => d.role === 'executor' && !d.revoked,
    );
    if (key)
      await revokeDevice(
        withoutStack.client,
        withoutStack.root,
        key.keyId,
        'bench: the baseline executor signs nothing',
      );
    baseline = await startBaselineExecutor(withoutStack);
    const sides: Side[] = [
      {
        label: 'with result signing and the once-only ledger',
        stack: withStack,
        executorPid: () => withStack.executor.child?.pid,
        records: (await registryView(withStack.client)).records,
        plans: WARMUP,
      },
      {
        label: 'without (baseline: neither)',
        stack: withoutStack,
        executorPid: () => baseline?.child.pid,
        records: (await registryView(withoutStack.client)).records,
        plans: WARMUP,
      },
    ];
    const [signed, unsigned] = sides as [Side, Side];
    await Promise.all(sides.map((side) => warmup(side.stack, WARMUP)));

    const samples = new Map<Side, Sample[]>(sides.map((s) => [s, []]));
    for (let i = 0; i < SAMPLES; i++)
      for (const side of i % 2 ? [signed, unsigned] : [unsigned, signed])
        samples.get(side)!.push(await approveOne(side));
    if (!(await signedResultOf(signed)) || (await signedResultOf(unsigned)))
      throw new Error('the sides are not what they say: expected a signed result with, none without');

    const rows = (pick: (s: Sample) => number) =>
      sides.map((side) => `  ${line(side.label, samples.get(side)!.map(pick))}`);
    console.log(
      `\nsigned approval submitted → step process started, ${SAMPLES} one-step plans each, interleaved (jail):`,
    );
    for (const row of rows((s) => s.started)) console.log(row);
    console.log(
      'signed approval submitted → plan closed (result signed and checked; with: close signed too):',
    );
    for (const row of rows((s) => s.closed)) console.log(row);
    console.log('  of which the approval Update round trip:');
    for (const row of rows((s) => s.update)) console.log(`  ${row}`);
    console.log('  of which step process ended → plan closed:');
    for (const row of rows((s) => s.afterEnd)) console.log(`  ${row}`);

    const half = THROUGHPUT_SECONDS / 2;
    const runs = new Map<Side, { latencies: number[]; failures: number }[]>(sides.map((s) => [s, []]));
    for (const side of [signed, unsigned, unsigned, signed])
      runs.get(side)!.push(await throughput(side, half));
    console.log(
      `\nthroughput: one-step plans a standing approval approves, ${CONCURRENCY} at a time, ${THROUGHPUT_SECONDS} s each (blocks A B B A):`,
    );
    for (const side of sides) {
      const latencies = runs.get(side)!.flatMap((r) => r.latencies);
      const failures = runs.get(side)!.reduce((n, r) => n + r.failures, 0);
      console.log(
        `  ${side.label.padEnd(46)} ${(latencies.length / THROUGHPUT_SECONDS).toFixed(1)} plans/s, ${failures} failed`,
      );
      console.log(`    ${line('submitted → completed', latencies)}`);
    }

    console.log('\nmemory after the runs:');
    for (const side of sides) {
      const pid = side.executorPid();
      const rss = pid ? await treeRssKiB(pid) : undefined;
      console.log(
        `  executor ${side.label.padEnd(46)} ${rss ? (rss.total / 1024).toFixed(0) : '?'} MiB resident (with its runners)`,
      );
    }
    const plans = signed.plans;
    const ledger = await diskUse(withStack.paths.executionLedger);
    console.log(
      `  the once-only ledger on disk: ${ledger.files} files, ${ledger.kib.toFixed(0)} KiB after ${plans} plans (${((ledger.kib * 1024) / plans).toFixed(0)} B per plan)`,
    );

    console.log(
      `\naudit of the largest plan a plan may be (${STEPS} steps + ${SUB_PLANS} sub-plans + ${SUB_PLANS} groups = 1,000 nodes), with signed results:`,
    );
    for (const row of await auditOfLargePlan(withStack)) console.log(`  ${row}`);
    console.log(`\n(bench ran ${((Date.now() - begun) / 1000).toFixed(0)} s)`);
  } finally {
    await baseline?.close();
    await withoutStack?.close();
    await withStack.close();
  }
}

await main();
