/**
 * Docker backend benchmarks, one run, against a real Temporal dev server and the real worker
 * processes; the executor runs first in the jail (the baseline), then in Docker:
 *   1. step overhead, jail vs Docker, first step of a plan (Docker creates the plan's workspace
 *      container there) and later steps: approval → step process started, and a `true` step
 *      end to end
 *   2. workspace container create+start+remove through the broker, beside dockerode called
 *      directly (same hardened spec, then a bare spec)
 *   3. leak check: plans on Docker while the executor is SIGKILLed again and again; afterwards no
 *      workspace container of theirs may remain
 * Everything it creates (containers, volumes, processes, temp folders) is removed at the end.
 * Knobs: BENCH_DOCKER_APPROVAL_PLANS (10), BENCH_DOCKER_STEPS_PER_PLAN (4), BENCH_DOCKER_E2E (15),
 * BENCH_DOCKER_CONTAINERS (30), BENCH_DOCKER_LEAK_PLANS (200), BENCH_DOCKER_LEAK_CONCURRENCY (8),
 * BENCH_DOCKER_KILLS (20).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultPayloadConverter } from '@temporalio/common';
import Docker from 'dockerode';
import type { StepResult } from '../core/plan/state.js';
import { planView } from '../services/plans.js';
import { DockerBroker } from '../sandbox/docker/broker.js';
import { hardenedSpec, LABELS } from '../sandbox/docker/container-policy.js';
import { WORKSPACE_IMAGE, workspaceVolumeName } from '../sandbox/docker/docker-backend.js';
import {
  approvalLatency,
  autoPlan,
  startBenchStack,
  submitAuto,
  until,
  warmup,
  type ApprovalSample,
  type BenchStack,
} from './harness.js';
import { line, summary } from './stats.js';

const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const APPROVAL_PLANS = knob('BENCH_DOCKER_APPROVAL_PLANS', 10);
const STEPS_PER_PLAN = knob('BENCH_DOCKER_STEPS_PER_PLAN', 4);
const E2E_PLANS = knob('BENCH_DOCKER_E2E', 15);
const CONTAINERS = knob('BENCH_DOCKER_CONTAINERS', 30);
const LEAK_PLANS = knob('BENCH_DOCKER_LEAK_PLANS', 200);
const LEAK_CONCURRENCY = knob('BENCH_DOCKER_LEAK_CONCURRENCY', 8);
const KILLS = knob('BENCH_DOCKER_KILLS', 20);

/** Every plan id (so every container label and volume name) of this run starts with it. */
const PREFIX = `bench${randomBytes(3).toString('hex')}-`;
let planSeq = 0;
const planIds = (kind: string) => () => `${PREFIX}${kind}-${planSeq++}`;

const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const t = () => performance.now();

/** A docker line printed under the jail line it compares with: the p50 difference appended. */
function pair(label: string, jail: number[], dockerSamples: number[]): string {
  const delta = summary(dockerSamples).p50 - summary(jail).p50;
  return [
    line(`  ${label.padEnd(34)} jail`, jail),
    `${line(`  ${label.padEnd(34)} docker`, dockerSamples)}  (p50 ${delta >= 0 ? '+' : ''}${delta.toFixed(1)}ms)`,
  ].join('\n');
}

interface StepOverhead {
  /** Approval → started.json, by first step of a plan and later steps. */
  started: { first: number[]; later: number[] };
  /** Approval → the command's own clock (`date`), inside the sandbox. */
  running: { first: number[]; later: number[] };
  onePlan: number[];
  twoFirst: number[];
  twoSecond: number[];
}

async function commandClock(sample: ApprovalSample): Promise<number | undefined> {
  const printed = /(\d{13})/.exec((await sample.run.tail(256)).text)?.[1];
  return printed ? Number(printed) - sample.approvedAtMs : undefined;
}

async function stepOverhead(stack: BenchStack): Promise<StepOverhead> {
  const sandbox = stack.sandbox;
  const approvals = await approvalLatency(stack, {
    samples: APPROVAL_PLANS * STEPS_PER_PLAN,
    stepsPerPlan: STEPS_PER_PLAN,
    run: 'date +%s%3N',
    planId: planIds(`${sandbox}-approve`),
  });
  const result: StepOverhead = {
    started: { first: [], later: [] },
    running: { first: [], later: [] },
    onePlan: [],
    twoFirst: [],
    twoSecond: [],
  };
  for (const sample of approvals) {
    const which = sample.index === 0 ? 'first' : 'later';
    result.started[which].push(sample.startLatency);
    const running = await commandClock(sample);
    if (running === undefined) throw new Error(`no timestamp in the transcript of ${sample.run.dir}`);
    result.running[which].push(running);
  }

  for (const steps of [1, 2]) {
    const ids = planIds(`${sandbox}-e2e${steps}`);
    for (let i = 0; i < E2E_PLANS; i++) {
      const submittedAt = Date.now();
      const { planId, workflowId } = await submitAuto(stack, autoPlan('bench-e2e', 'true', steps), {
        planId: ids(),
      });
      await stack.client.workflow.getHandle(workflowId).result();
      const elapsed = Date.now() - submittedAt;
      const view = await planView(stack.client, planId);
      const finished = view.steps.map((s) => {
        if (s.result?.backend !== sandbox)
          throw new Error(`step ${planId}/${s.path} ran in ${s.result?.backend}, expected ${sandbox}`);
        return Date.parse(s.result.finishedAt);
      });
      if (steps === 1) result.onePlan.push(elapsed);
      else {
        result.twoFirst.push(finished[0]! - submittedAt);
        result.twoSecond.push(finished[1]! - finished[0]!);
      }
    }
  }
  return result;
}

async function containerChurn(): Promise<string[]> {
  const broker = await DockerBroker.connect([WORKSPACE_IMAGE], { info: () => undefined });
  const imageId = broker.imageId(WORKSPACE_IMAGE)!;
  const plan = `${PREFIX}broker`;
  const request = { image: WORKSPACE_IMAGE, owner: { plan } };
  const labels = { [LABELS.managed]: 'true', [LABELS.plan]: plan };
  const ways: [string, () => Promise<() => Promise<void>>][] = [
    [
      'broker.run + broker.remove',
      async () => {
        const { id } = await broker.run(request);
        return () => broker.remove(id);
      },
    ],
    [
      'dockerode, same hardened spec, no policy check',
      async () => {
        const name = `countersign-${plan}-${randomBytes(4).toString('hex')}`;
        const container = await docker.createContainer(hardenedSpec(request, imageId, name));
        await container.start();
        return () => container.remove({ force: true });
      },
    ],
    [
      'dockerode, bare spec (sleep, network disabled)',
      async () => {
        const container = await docker.createContainer({
          Image: imageId,
          Cmd: ['sleep', 'infinity'],
          Labels: labels,
          // As the hardened spec: no network namespace to set up (`--network none` alone costs more).
          NetworkDisabled: true,
          HostConfig: { NetworkMode: 'none' },
        });
        await container.start();
        return () => container.remove({ force: true });
      },
    ],
  ];
  const samples = ways.map(() => ({ up: [] as number[], down: [] as number[], total: [] as number[] }));
  // Interleaved, so drift in the engine's speed spreads over all three.
  for (let i = 0; i < CONTAINERS; i++) {
    for (const [w, [, way]] of ways.entries()) {
      const t0 = t();
      const remove = await way();
      const t1 = t();
      await remove();
      const t2 = t();
      samples[w]!.up.push(t1 - t0);
      samples[w]!.down.push(t2 - t1);
      samples[w]!.total.push(t2 - t0);
    }
  }
  return ways.flatMap(([label], w) => [
    `  ${label}`,
    line('    total', samples[w]!.total),
    line('    create+start', samples[w]!.up),
    line('    remove (force)', samples[w]!.down),
  ]);
}

/** Bench containers still there, by plan id. */
async function benchContainers(): Promise<Docker.ContainerInfo[]> {
  const all = await docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`] } });
  return all.filter((c) => (c.Labels[LABELS.plan] ?? '').startsWith(PREFIX));
}

/** Calls `fn` on every item, at most `limit` at a time. */
async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * From a plan's history (read, not replayed): the activities that needed more than one attempt,
 * when each was scheduled and how long until its last attempt started, and how many times an
 * executor attached to its shell step.
 */
async function planHistory(stack: BenchStack, planId: string) {
  const { events } = await stack.client.workflow.getHandle(`plan-${planId}`).fetchHistory();
  const all = events ?? [];
  const ms = (e: (typeof all)[number]) =>
    Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
  const scheduled = (id: unknown) => all.find((e) => String(e.eventId) === String(id));
  const retries = all.flatMap((started) => {
    const attrs = started.activityTaskStartedEventAttributes;
    if (!attrs || (attrs.attempt ?? 1) <= 1) return [];
    const at = scheduled(attrs.scheduledEventId);
    if (!at) return [];
    const name = at.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
    return [{ name, attempt: attrs.attempt!, scheduledMs: ms(at), waitedMs: ms(started) - ms(at) }];
  });
  const step = all.find(
    (e) =>
      scheduled(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? -1)
        ?.activityTaskScheduledEventAttributes?.activityType?.name === 'runShellStep',
  );
  const payload = step?.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
  const result = payload && defaultPayloadConverter.fromPayload<StepResult>(payload);
  return { retries, attachCount: result?.attachCount ?? 0 };
}

async function leakCheck(stack: BenchStack): Promise<string[]> {
  const plan = autoPlan('bench-leak', 'sleep 0.3; echo ok');
  const ids = Array.from({ length: LEAK_PLANS }, planIds('leak'));
  const latencies = new Map<string, number>();
  const failures = new Map<string, string>();
  let done = 0;
  const startedAt = Date.now();
  const submitting = eachLimit(ids, LEAK_CONCURRENCY, async (planId) => {
    const t0 = Date.now();
    try {
      const { workflowId } = await submitAuto(stack, plan, { planId });
      await stack.client.workflow.getHandle(workflowId).result();
      latencies.set(planId, Date.now() - t0);
    } catch (error) {
      failures.set(planId, (error as Error).message);
    }
    done++;
  });
  // Kills spread over the run by progress, each at a random moment after its mark.
  const killedAt: number[] = [];
  const killing = (async () => {
    for (let k = 1; k <= KILLS; k++) {
      const mark = Math.floor((k * LEAK_PLANS) / (KILLS + 1));
      await until(async () => (done >= mark ? true : undefined), 20);
      await sleep(randomInt(0, 500));
      killedAt.push(Date.now());
      await stack.startExecutor('docker', 'SIGKILL');
    }
  })();
  await Promise.all([submitting, killing]);
  const seconds = (Date.now() - startedAt) / 1000;
  const leaked = (await benchContainers()).filter((c) => c.Labels[LABELS.plan]?.startsWith(`${PREFIX}leak-`));

  // Where the kills landed: steps re-attached to or retried, and what held the slow plans up.
  let reattached = 0;
  let retried = 0;
  const slowRows: string[] = [];
  await eachLimit([...latencies], LEAK_CONCURRENCY, async ([planId, ms]) => {
    const { retries, attachCount } = await planHistory(stack, planId);
    if (attachCount > 1) reattached++;
    if (retries.some((r) => r.name === 'runShellStep')) retried++;
    if (ms < 30_000) return;
    const why = retries.map(({ name, attempt, scheduledMs, waitedMs }) => {
      const kill = killedAt.reduce((a, b) => (Math.abs(b - scheduledMs) < Math.abs(a - scheduledMs) ? b : a));
      return `${name} attempt ${attempt} started ${(waitedMs / 1000).toFixed(1)}s after scheduled (scheduled ${Math.abs(scheduledMs - kill)}ms ${scheduledMs < kill ? 'before' : 'after'} a SIGKILL)`;
    });
    slowRows.push(`    ${planId} ${(ms / 1000).toFixed(1)}s: ${why.join('; ') || 'no activity retried'}`);
  });
  return [
    `  ${LEAK_PLANS} plans, ${LEAK_CONCURRENCY} in flight, executor SIGKILLed ${killedAt.length} times, ${seconds.toFixed(0)}s`,
    `  outcomes: ${latencies.size} succeeded, ${failures.size} failed`,
    ...[...failures].map(([id, message]) => `    failed ${id}: ${message}`),
    `  steps re-attached after a kill: ${reattached}; step activities retried: ${retried}`,
    `  plans that took ≥30s: ${slowRows.length}`,
    ...slowRows,
    line('  submit → plan completed', [...latencies.values()]),
    `leaked containers: ${leaked.length}`,
    ...leaked.map(
      (c) => `    ${c.Id.slice(0, 12)} ${c.Names.join(',')} plan=${c.Labels[LABELS.plan]} ${c.State}`,
    ),
  ];
}

/** Removes every container and workspace volume of this run; says what it removed. */
async function removeBenchLeftovers(): Promise<string> {
  const containers = await benchContainers();
  for (const c of containers) await docker.getContainer(c.Id).remove({ force: true });
  const { Volumes } = await docker.listVolumes({ filters: { name: [workspaceVolumeName(PREFIX)] } });
  const volumes = (Volumes ?? []).filter((v) => v.Name.startsWith(workspaceVolumeName(PREFIX)));
  for (const v of volumes) await docker.getVolume(v.Name).remove();
  return `removed ${containers.length} containers and ${volumes.length} workspace volumes left by this run`;
}

/** Seconds since the previous call: each section says what it cost. */
function lap(): string {
  const now = Date.now();
  const seconds = (now - lapAt) / 1000;
  lapAt = now;
  return `${seconds.toFixed(0)}s`;
}
let lapAt = Date.now();

async function main(): Promise<void> {
  const began = Date.now();
  const stack = await startBenchStack('jail');
  try {
    console.log(
      `\nCountersign Docker benchmarks — ${new Date().toISOString()} — node ${process.version}, ${cpus().length} cores, plans ${PREFIX}*`,
    );
    console.log(`stack up in ${lap()}\n`);
    await warmup(stack, 5, planIds('jail-warmup'));
    const jail = await stepOverhead(stack);
    const jailTook = lap();
    await stack.startExecutor('docker');
    await warmup(stack, 3, planIds('docker-warmup'));
    const dock = await stepOverhead(stack);
    console.log(`1. step overhead, jail (the baseline) vs Docker (jail ${jailTook}, docker ${lap()})`);
    console.log('approval → step process started (runner wrote started.json)');
    console.log(pair('first step', jail.started.first, dock.started.first));
    console.log(pair('later steps', jail.started.later, dock.started.later));
    console.log('approval → command running (`date` inside the sandbox)');
    console.log(pair('first step', jail.running.first, dock.running.first));
    console.log(pair('later steps', jail.running.later, dock.running.later));
    console.log('`true` step end to end (auto-approved)');
    console.log(pair('1-step plan: submit → result', jail.onePlan, dock.onePlan));
    console.log(pair('2-step: submit → step 1 done', jail.twoFirst, dock.twoFirst));
    console.log(pair('2-step: step 1 done → step 2 done', jail.twoSecond, dock.twoSecond));

    const churn = await containerChurn();
    console.log(`\n2. workspace container create+start+remove, ${CONTAINERS} each (${lap()})`);
    console.log(churn.join('\n'));

    const left = (await benchContainers()).length;
    const leaks = await leakCheck(stack);
    console.log(`\n3. leak check, Docker backend (${lap()})`);
    console.log(`  bench containers left by sections 1–2: ${left}`);
    console.log(leaks.join('\n'));
  } finally {
    await stack.close();
    const cleanup = await removeBenchLeftovers().catch(
      (error: unknown) => `cleanup failed: ${String(error)}`,
    );
    console.log(`\n${cleanup}; ${((Date.now() - began) / 1000).toFixed(0)}s in all`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
