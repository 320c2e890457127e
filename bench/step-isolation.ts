/**
 * What a container per step costs when a step starts (issue 15), on the real engine with the real
 * runner and the executor's launch path (prepareWorkspace, argvFor, a warm runner, the Docker CLI
 * under the runner's PTY), beside the per-plan container with `docker exec` of before
 * (bench/baseline-docker-exec.ts), interleaved plan by plan in one run:
 *   - launch → the step's command running (its own clock, `date +%s%3N`, inside the container)
 *   - launch → the first byte of the step's output in its transcript
 *   - launch → the result written (the per-step runner first confirms the container stopped)
 *   - launch → the step's sandbox released (per step: its container removed)
 * The per-plan container is made on a plan's first step, so first and later steps are reported
 * apart. What comes before the launch (approval, workflow, activity dispatch, trust checks) is the
 * same code for both; bench:docker and bench:trust measure it.
 * Knobs: BENCH_ISOLATION_PLANS (15), BENCH_ISOLATION_STEPS (4).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SandboxBackend } from '../sandbox/backend.js';
import { DockerBroker } from '../sandbox/docker/broker.js';
import { createDockerBackend, WORKSPACE_IMAGE } from '../sandbox/docker/docker-backend.js';
import { RunnerPool } from '../sandbox/runner/pool.js';
import { RunDir } from '../sandbox/runner/run-dir.js';
import { createBaselineDockerExecBackend } from './baseline-docker-exec.js';
import { until } from './harness.js';
import { line, summary } from './stats.js';

const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const PLANS = knob('BENCH_ISOLATION_PLANS', 15);
const STEPS = knob('BENCH_ISOLATION_STEPS', 4);
/** Lets the pool's next warm runner become ready, as it is between a plan's steps. */
const PAUSE_MS = 300;
const PREFIX = `benchiso${randomBytes(3).toString('hex')}-`;

interface Side {
  label: string;
  backend: SandboxBackend;
  /** Samples by first step of a plan and later steps. */
  samples: Record<'first' | 'later', Record<Measure, number[]>>;
}
type Measure = 'running' | 'firstOutput' | 'result' | 'released';
const MEASURES: [Measure, string][] = [
  ['running', 'launch → command running'],
  ['firstOutput', 'launch → first output byte'],
  ['result', 'launch → result written'],
  ['released', 'launch → step sandbox released'],
];
const emptySamples = () => ({ running: [], firstOutput: [], result: [], released: [] });

async function runStep(
  side: Side,
  pool: RunnerPool,
  runsRoot: string,
  planId: string,
  index: number,
  record: boolean,
): Promise<void> {
  await sleep(PAUSE_MS);
  const stepPath = `s${index}`;
  const run = new RunDir(runsRoot, { workflowId: planId, stepPath, digest: 'bench' });
  await run.claim();
  const execution = { workspaceId: planId, stepPath, runKey: run.key, egress: false };
  const t0 = Date.now();
  const workspace = await side.backend.prepareWorkspace(planId, '.', { egress: false });
  const argv = await side.backend.argvFor({
    workspace,
    cwd: '.',
    env: { STEP: stepPath },
    run: 'date +%s%3N',
    timeoutMs: 60_000,
    execution,
  });
  await pool.launch({
    runDir: run.dir,
    file: argv.file,
    args: argv.args,
    env: argv.env,
    stop: argv.stop,
    maxTranscriptBytes: 1024 * 1024,
    timeoutMs: 60_000,
  });
  const firstOutputAt = await until(async () =>
    (await stat(run.path('transcript.log')).catch(() => undefined))?.size ? Date.now() : undefined,
  );
  const finished = await until(async () => {
    const state = await run.state();
    return state.phase === 'finished' ? state.finished : undefined;
  });
  await side.backend.releaseStep?.(execution);
  const releasedAt = Date.now();
  const transcript = await readFile(run.path('transcript.log'), 'utf8');
  const printed = /(\d{13})/.exec(transcript)?.[1];
  if (finished.exitCode !== 0 || !printed)
    throw new Error(`${side.label}: step ${planId}/${stepPath} failed (${finished.exitCode}): ${transcript}`);
  if (!record) return;
  const into = side.samples[index === 0 ? 'first' : 'later'];
  into.running.push(Number(printed) - t0);
  into.firstOutput.push(firstOutputAt - t0);
  into.result.push(finished.finishedAtMs - t0);
  into.released.push(releasedAt - t0);
}

async function runPlan(side: Side, pool: RunnerPool, runsRoot: string, record: boolean): Promise<void> {
  const planId = `${PREFIX}${side.label === 'per-step' ? 's' : 'p'}${randomBytes(4).toString('hex')}`;
  try {
    for (let i = 0; i < STEPS; i++) await runStep(side, pool, runsRoot, planId, i, record);
  } finally {
    await side.backend.releaseWorkspace(planId, { removeFiles: true });
  }
}

async function main(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'countersign-bench-isolation-'));
  const broker = await DockerBroker.connect(
    [WORKSPACE_IMAGE],
    { info: () => undefined },
    {
      scope: `bench-isolation-${randomBytes(4).toString('hex')}`,
    },
  );
  const clientDir = join(scratch, 'docker-client');
  const pool = await RunnerPool.start({ size: 1, idleRetireMs: 600_000 });
  const sides: Side[] = [
    {
      label: 'per-plan',
      backend: createBaselineDockerExecBackend({ broker, clientDir }),
      samples: { first: emptySamples(), later: emptySamples() },
    },
    {
      label: 'per-step',
      backend: createDockerBackend({ broker, clientDir }),
      samples: { first: emptySamples(), later: emptySamples() },
    },
  ];
  const runsRoot = join(scratch, 'runs');
  const started = Date.now();
  try {
    for (const side of sides) await runPlan(side, pool, runsRoot, false); // warm-up
    for (let i = 0; i < PLANS; i++) {
      // Alternating which goes first, so drift in the engine's speed spreads over both.
      for (const side of i % 2 ? [...sides].reverse() : sides) await runPlan(side, pool, runsRoot, true);
    }
  } finally {
    pool.close();
    await broker.reap(new Set()).catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
  const [perPlan, perStep] = sides as [Side, Side];
  console.log(
    `step start on Docker: a container per step (the product) beside one per plan with docker exec (the baseline)`,
  );
  console.log(
    `${PLANS} plans × ${STEPS} steps each, interleaved, \`date +%s%3N\` as the step (${Math.round((Date.now() - started) / 1000)} s)\n`,
  );
  const p50 = (samples: number[]) => summary(samples).p50;
  for (const [measure, title] of MEASURES) {
    console.log(title);
    console.log(line('  per-plan container, docker exec: first step', perPlan.samples.first[measure]));
    console.log(line('  per-plan container, docker exec: later steps', perPlan.samples.later[measure]));
    const every = [...perStep.samples.first[measure], ...perStep.samples.later[measure]];
    const delta = p50(every) - p50(perPlan.samples.later[measure]);
    console.log(
      `${line('  container per step: every step', every)}  (p50 ${delta >= 0 ? '+' : ''}${delta.toFixed(1)}ms vs later steps)`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
