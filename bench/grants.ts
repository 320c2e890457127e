/**
 * Standing approvals, measured on a real stack (Temporal dev server, the control and executor
 * worker processes, jail sandbox):
 *   1. gate reached → step process started, for a step a grant approves (the control worker finds
 *      the grant, spends nothing, signs; the workflow and the executor verify it) beside a step a
 *      device approves (the bench sees the gate, signs, submits the Update) in the same run,
 *      interleaved, p50/p99 over BENCH_GRANT_SAMPLES (200) steps each;
 *   2. the cost of grant matching per step, in µs: finding the covering grant among 1, 10 and 100
 *      grants in force, the plain-words parse, and the one authorisation rule over a grant
 *      approval beside a device approval (each verifies an Ed25519 signature).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { signApproval } from '../core/approval/approval.js';
import { authorizeStep } from '../core/approval/authorize.js';
import { DeviceRegistry } from '../core/devices/registry.js';
import { signDeviceRecord } from '../core/devices/records.js';
import { toBase64 } from '../core/bytes.js';
import { buildGrantRecord } from '../core/grants/grant.js';
import { coveringGrants } from '../core/grants/select.js';
import { plainWords } from '../core/grants/shell-words.js';
import { keyPairFromSecret } from '../core/keys.js';
import { stepDigest } from '../core/plan/digest.js';
import type { ShellStep } from '../core/plan/types.js';
import { validatePlan } from '../core/plan/validate.js';
import { planSteps } from '../core/plan/walk.js';
import { registryView } from '../services/devices.js';
import { planView, submitPlan } from '../services/plans.js';
import { RunDir } from '../sandbox/runner/run-dir.js';
import { approveUpdate } from '../workflows/messages.js';
import { autoPlan, startBenchStack, submitAuto, until, warmup, type BenchStack } from './harness.js';
import { line } from './stats.js';

const SAMPLES = Number(process.env.BENCH_GRANT_SAMPLES ?? 200);

async function startedAt(
  stack: BenchStack,
  workflowId: string,
  runId: string,
  stepPath: string,
  digest: string,
): Promise<number> {
  const run = new RunDir(stack.paths.runs, { workflowId, runId, stepPath, digest });
  const started = await until(
    async () => JSON.parse(await readFile(run.path('started.json'), 'utf8')) as { startedAtMs: number },
    1,
  );
  return started.startedAtMs;
}

/** One plan of one `true` step that a grant approves: gate reached → process started. */
async function grantApproved(stack: BenchStack): Promise<number> {
  const { planId, workflowId } = await submitAuto(stack, autoPlan('bench-grant', 'true'));
  const view = await until(async () => {
    const v = await planView(stack.client, planId);
    return v.steps[0]?.awaitingSince && v.steps[0].digest ? v : undefined;
  }, 5);
  const step = view.steps[0]!;
  const started = await startedAt(stack, workflowId, view.runId, step.path, step.digest);
  await stack.client.workflow.getHandle(workflowId).result();
  return started - Date.parse(step.awaitingSince!);
}

/** One plan of one `true` step a device approves as soon as it sees the gate: gate reached → process started. */
async function deviceApproved(stack: BenchStack): Promise<{ gateToStart: number; seenAfter: number }> {
  const { planId, workflowId } = await submitPlan(
    stack.client,
    { name: 'bench-device', steps: [{ id: 's0', run: 'true' }] },
    { proposer: 'bench' },
  );
  const { records } = await registryView(stack.client);
  const view = await until(async () => {
    const v = await planView(stack.client, planId);
    return v.steps[0]?.status === 'awaiting_approval' ? v : undefined;
  }, 5);
  const step = view.steps[0]!;
  const seenAt = Date.now();
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
    stack.root,
  );
  await stack.client.workflow
    .getHandle(workflowId)
    .executeUpdate(approveUpdate, { args: [{ envelope, deviceRecords: records }] });
  const started = await startedAt(stack, workflowId, view.runId, step.path, step.digest);
  await stack.client.workflow.getHandle(workflowId).result();
  const gate = Date.parse(step.awaitingSince!);
  return { gateToStart: started - gate, seenAfter: seenAt - gate };
}

/** µs per call of `work`, over `n` calls after a warm-up, as a list of per-call samples. */
function micro(work: () => unknown, n = 2000): number[] {
  for (let i = 0; i < 200; i++) work();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    work();
    out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return out;
}

function matchingCosts(): string[] {
  const key = (n: number) => keyPairFromSecret(new Uint8Array(32).fill(n));
  const root = key(1);
  const policy = key(2);
  const at = '2030-01-01T00:00:00.000Z';
  const records = [
    signDeviceRecord({ type: 'enroll-root', publicKey: toBase64(root.publicKey), name: 'root', at }, root),
    signDeviceRecord(
      { type: 'introduce', publicKey: toBase64(policy.publicKey), name: 'policy', role: 'policy', at },
      root,
    ),
  ];
  const grant = (i: number, command: string) =>
    signDeviceRecord(
      buildGrantRecord(
        { name: `g${i}`, scope: { device: root.keyId }, covers: { kind: 'shell', command, match: 'prefix' } },
        Date.parse(at),
        i.toString(16).padStart(16, '0'),
      ),
      root,
    );
  const registries = new Map<number, DeviceRegistry>();
  for (const n of [1, 10, 100]) {
    // The covering grant is the last one looked at: the worst case for a linear search.
    const others = Array.from({ length: n - 1 }, (_, i) => grant(i + 1, `make target-${i}`));
    registries.set(n, DeviceRegistry.fromRecords([...records, ...others, grant(n, 'npm run')]));
  }
  const step = planSteps(
    validatePlan({ name: 'p', steps: [{ id: 's', run: 'npm run test -- --grep auth', approval: 'auto' }] }),
  )[0] as ShellStep;
  const workflowId = 'plan-bench';
  const runId = 'r'.repeat(36);
  const digest = stepDigest(step, 'bench');
  const granted = { step, egress: false, planName: 'p', proposer: { device: root.keyId } };
  const nowMs = Date.parse(at) + 1000;
  const rows = [...registries].map(([n, registry]) =>
    line(
      `find the covering grant among ${n} in force`,
      micro(() => coveringGrants(registry, granted, nowMs)),
      'µs',
    ),
  );
  rows.push(
    line(
      'plain-words parse of the command',
      micro(() => plainWords(step.run)),
      'µs',
    ),
  );
  const registry = registries.get(100)!;
  const covering = registry.grant((100).toString(16).padStart(16, '0'))!;
  const approval = (signer: typeof root, withGrant: boolean) =>
    signApproval(
      {
        workflowId,
        runId,
        stepPath: 's',
        stepDigest: digest,
        decision: 'approve',
        nowMs,
        nonce: randomBytes(18).toString('base64url'),
        ...(withGrant ? { grant: { id: covering.grantId, sig: covering.sig } } : {}),
      },
      signer,
    );
  const byGrant = approval(policy, true);
  const byDevice = approval(root, false);
  const authorize = (envelope: typeof byGrant) => () =>
    authorizeStep({
      workflowId,
      runId,
      step,
      expected: { digest, auto: true, granted },
      approvals: [envelope],
      registry,
    });
  rows.push(
    line('one authorisation rule, grant approval (100 grants)', micro(authorize(byGrant), 500), 'µs'),
  );
  rows.push(
    line('one authorisation rule, device approval (baseline)', micro(authorize(byDevice), 500), 'µs'),
  );
  return rows;
}

async function main(): Promise<void> {
  console.log('grant matching, per step (pure, this process):');
  for (const row of matchingCosts()) console.log(`  ${row}`);

  const stack = await startBenchStack('jail');
  try {
    await warmup(stack, 5);
    const grants: number[] = [];
    const devices: number[] = [];
    const seen: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      grants.push(await grantApproved(stack));
      const device = await deviceApproved(stack);
      devices.push(device.gateToStart);
      seen.push(device.seenAfter);
    }
    console.log(`\ngate reached → step process started, ${SAMPLES} one-step plans each, interleaved (jail):`);
    console.log(`  ${line('approved by a standing approval (no person)', grants)}`);
    console.log(`  ${line('approved by a device as soon as it saw the gate', devices)}`);
    console.log(`  ${line('  of which: gate reached → the device saw it (5 ms poll)', seen)}`);
  } finally {
    await stack.close();
  }
}

await main();
