/**
 * API and web-app benchmarks, one run on this machine, against a real Temporal dev server, the
 * real worker processes and the real API process (each started the way `countersign up` does):
 *   1. approval round trip through the API: signed approval POSTed over HTTP → the step's
 *      process started (jail), p50/p99. Baseline in the same run: the same approvals sent
 *      straight to Temporal as an Update (the CLI's path).
 *   2. live-update delay: a step's state change (its history event) → the `plan` event seen by
 *      an EventSource in headless Chromium, p50/p99.
 *   3. time to first byte and to interactive of the web app's main screens, in headless
 *      Chromium at 390 × 844, p50/p99 over repeated loads.
 *   4. gzip size of the web app's JavaScript (and CSS).
 * Knobs: BENCH_API_APPROVALS (100), BENCH_API_LIVE_STEPS (40), BENCH_API_SCREEN_LOADS (15).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { RunDir } from '../sandbox/runner/run-dir.js';
import { planView } from '../services/plans.js';
import { signDecision } from '../test/support/api.js';
import { launchPhone, type Phone } from '../test/support/browser.js';
import type { WorkerProcess } from '../test/support/processes.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { approvalLatency, startBenchStack, submitAuto, until, warmup, type BenchStack } from './harness.js';
import { apiPost, httpLogin, startApiProcess, type HttpSession } from './http.js';
import { line } from './stats.js';
import { measureScreens } from './web-app-screens.js';

const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const APPROVALS = knob('BENCH_API_APPROVALS', 100);
const LIVE_STEPS = knob('BENCH_API_LIVE_STEPS', 40);
const SCREEN_LOADS = knob('BENCH_API_SCREEN_LOADS', 15);
const STEPS_PER_PLAN = 10;

/** (1) HTTP POST of a signed approval → started.json of the step's run. */
async function approvalsThroughApi(stack: BenchStack, session: HttpSession) {
  const roundTrips: number[] = [];
  const startLatencies: number[] = [];
  const steps = Array.from({ length: STEPS_PER_PLAN }, (_, i) => ({ id: `s${i}`, run: 'true' }));
  while (startLatencies.length < APPROVALS) {
    const submitted = await apiPost(session, '/api/plans', { plan: { name: 'bench-api-approval', steps } });
    const { planId, workflowId } = (await submitted.json()) as { planId: string; workflowId: string };
    for (const { id } of steps) {
      if (startLatencies.length >= APPROVALS) break;
      const view = await until(async () => {
        const v = await planView(stack.client, planId);
        return v.steps.find((s) => s.path === id)?.status === 'awaiting_approval' ? v : undefined;
      }, 10);
      const envelope = signDecision(view, id, stack.root, 'approve');
      const t0 = Date.now();
      const response = await apiPost(session, `/api/plans/${workflowId}/approvals`, { envelope });
      roundTrips.push(Date.now() - t0);
      if (!response.ok) throw new Error(`approval refused: ${await response.text()}`);
      const digest = view.steps.find((s) => s.path === id)!.digest;
      const run = new RunDir(stack.paths.runs, { workflowId, runId: view.runId, stepPath: id, digest });
      const started = await until(
        async () => JSON.parse(await readFile(run.path('started.json'), 'utf8')) as { startedAtMs: number },
        1,
      );
      startLatencies.push(started.startedAtMs - t0);
    }
    await stack.client.workflow
      .getHandle(workflowId)
      .cancel()
      .catch(() => undefined);
    await stack.client.workflow
      .getHandle(workflowId)
      .result()
      .catch(() => undefined);
  }
  return { roundTrips, startLatencies };
}

/** (2) ActivityTaskCompleted of each step → a `plan` event showing it succeeded, seen in Chromium. */
async function liveUpdateDelay(stack: BenchStack, session: HttpSession, phone: Phone): Promise<number[]> {
  const context = await phone.newContext();
  await context.addCookies([{ name: 'cs_session', value: session.cookieValue, url: session.url }]);
  const page = await context.newPage();
  await page.goto(`${session.url}/api/health`);
  const steps = Array.from({ length: LIVE_STEPS }, (_, i) => ({
    id: `s${i}`,
    run: 'sleep 0.2',
    approval: 'auto',
  }));
  const plan = { name: 'bench-live', steps };
  // Proposed signed by the root device, whose standing approval for `sleep 0.2` runs every step
  // (a plan posted to the API carries no signed proposal, so no grant could apply to it).
  const { workflowId } = await submitAuto(stack, plan);
  // Runs in the page: records when each step is first seen succeeded in a `plan` event.
  await page.evaluate(`(() => {
    window.seen = {};
    const source = new EventSource('/api/events?plan=${workflowId}');
    source.addEventListener('plan', (event) => {
      const now = Date.now();
      for (const step of JSON.parse(event.data).tree.view.steps)
        if (step.status === 'succeeded') window.seen[step.path] ??= now;
    });
  })()`);
  await stack.client.workflow.getHandle(workflowId).result();
  await page.waitForFunction(`Object.keys(window.seen).length >= ${LIVE_STEPS}`);
  const seen = (await page.evaluate('window.seen')) as Record<string, number>;
  await context.close();

  const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
  const stepOfScheduled = new Map<string, string>();
  const delays: number[] = [];
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === 'runShellStep') {
      const input = scheduled.input?.payloads?.[0]?.data;
      const step = input
        ? (JSON.parse(Buffer.from(input).toString()) as { step?: { path?: string } }).step?.path
        : undefined;
      if (step) stepOfScheduled.set(String(event.eventId), step);
    }
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) {
      const step = stepOfScheduled.get(String(completed.scheduledEventId));
      const at = event.eventTime;
      if (step && at && seen[step])
        delays.push(seen[step]! - (Number(at.seconds) * 1000 + Math.floor((at.nanos ?? 0) / 1e6)));
    }
  }
  return delays;
}

async function assetSizes(): Promise<{
  js: number;
  jsGzip: number;
  css: number;
  cssGzip: number;
  files: number;
}> {
  const dir = join(PROJECT_ROOT, 'ui', 'dist', 'assets');
  const out = { js: 0, jsGzip: 0, css: 0, cssGzip: 0, files: 0 };
  for (const file of await readdir(dir)) {
    const bytes = await readFile(join(dir, file));
    const gzip = gzipSync(bytes, { level: 9 }).length;
    if (file.endsWith('.js')) {
      out.js += bytes.length;
      out.jsGzip += gzip;
      out.files++;
    } else if (file.endsWith('.css')) {
      out.css += bytes.length;
      out.cssGzip += gzip;
    }
  }
  return out;
}

async function main(): Promise<void> {
  console.log(`Countersign API and web-app benchmarks (${new Date().toISOString()})`);
  const stack = await startBenchStack('jail');
  let api: WorkerProcess | undefined;
  let phone: Phone | undefined;
  try {
    const started = await startApiProcess(stack);
    api = started.api;
    await warmup(stack);
    const session = await httpLogin(started.url, stack.root);

    console.log(`\n1. approval round trip, ${APPROVALS} approvals of \`true\` steps (jail)`);
    const viaApi = await approvalsThroughApi(stack, session);
    const direct = await approvalLatency(stack, {
      samples: APPROVALS,
      stepsPerPlan: STEPS_PER_PLAN,
      run: 'true',
    });
    console.log(line('  API: HTTP approval → step process started', viaApi.startLatencies));
    console.log(line('  API: HTTP approval request round trip', viaApi.roundTrips));
    console.log(
      line(
        '  baseline: Temporal Update → step process started',
        direct.map((s) => s.startLatency),
      ),
    );
    console.log(
      line(
        '  baseline: Temporal Update round trip',
        direct.map((s) => s.updateRoundTrip),
      ),
    );

    phone = await launchPhone();
    console.log(`\n2. live-update delay, ${LIVE_STEPS} step completions, EventSource in headless Chromium`);
    console.log(
      line(
        '  step completed (history event) → `plan` event seen',
        await liveUpdateDelay(stack, session, phone),
      ),
    );

    console.log(`\n3. web app screens, ${SCREEN_LOADS} loads each, headless Chromium 390 × 844`);
    for (const screen of await measureScreens(stack, session, phone, SCREEN_LOADS)) {
      console.log(line(`  ${screen.name}: time to first byte`, screen.ttfb));
      console.log(line(`  ${screen.name}: time to interactive`, screen.tti));
    }

    const sizes = await assetSizes();
    console.log('\n4. web app assets (ui/dist/assets)');
    console.log(
      `  JavaScript: ${sizes.files} file(s), ${(sizes.js / 1024).toFixed(1)} KiB, gzip ${(sizes.jsGzip / 1024).toFixed(1)} KiB`,
    );
    console.log(`  CSS: ${(sizes.css / 1024).toFixed(1)} KiB, gzip ${(sizes.cssGzip / 1024).toFixed(1)} KiB`);
  } finally {
    await phone?.close();
    await api?.kill('SIGTERM');
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
