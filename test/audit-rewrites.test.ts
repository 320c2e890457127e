/**
 * The audit covers what ran, not only what was approved. A real plan runs (steps approved by a
 * person and by a standing approval, a sub-plan, a last step that fails); its bundle is then
 * rewritten the way someone holding the file would — outputs swapped, an output made to say "all
 * passed", an exit code changed, the history cut after the first step, the signed close dropped,
 * the proposer rewritten — and the manifest re-sealed each time (anyone can recompute a hash), so
 * only the executor's signatures and the signed proposal can catch it. Each verdict must fail and
 * say which step's output, exit code, ending or proposer does not verify. A plan submitted without
 * a signed proposal (the web app) verifies, and says plainly that its proposer is not signed.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../core/keys.js';
import { exportBundle, workflowDigest, type AuditBundle } from '../services/audit/bundle.js';
import { verifyBundle, type BundleVerdict } from '../services/audit/verify.js';
import { introduceDevice } from '../services/devices.js';
import { decide, submitPlan } from '../services/plans.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { grantFor, shell, submitSigned } from './support/grants.js';
import { waitForStep, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let dir: string;
/** The signed plan: build (a person), lint (a standing approval), docs/write (a sub-plan), test (fails). */
let signed: AuditBundle;
/** The same kind of plan from the web app: no signed proposal. */
let unsigned: AuditBundle;
const laptop = { ...generateKeyPair(), name: 'audit laptop' };
const webLabel = () => `device "test phone" (${stack.root.keyId.slice(0, 12)})`;

beforeAll(async () => {
  stack = await startTestStack('audit-rewrites');
  dir = await mkdtemp(join(tmpdir(), 'countersign-audit-rewrites-'));
  // Another person's device: the one a forger would rather name as the proposer.
  await introduceDevice(stack.client, stack.root, laptop);
  await grantFor(stack.client, stack.root, { name: 'lint', covers: shell('echo lint clean') });
  const plan = await submitSigned(stack.client, stack.root, {
    name: 'release',
    steps: [
      { id: 'build', run: 'echo built' },
      { id: 'lint', run: 'echo lint clean', approval: 'auto' },
      { id: 'docs', plan: { name: 'docs', steps: [{ id: 'write', run: 'echo docs' }] } },
      { id: 'test', run: 'echo "3 passed, 2 failed"; exit 1' },
    ],
  });
  await waitForStep(stack.client, plan.planId, 'build', 'awaiting_approval');
  await decide(stack.client, stack.root, plan.planId, 'build', { decision: 'approve' });
  await waitForView(stack.client, plan.planId, (v) => v.subPlans[0]?.status === 'running');
  await waitForStep(stack.client, `${plan.workflowId}.docs`, 'write', 'awaiting_approval');
  await decide(stack.client, stack.root, plan.planId, 'docs/write', { decision: 'approve' });
  await waitForStep(stack.client, plan.planId, 'test', 'awaiting_approval');
  await decide(stack.client, stack.root, plan.planId, 'test', { decision: 'approve' });
  await stack.client.workflow
    .getHandle(plan.workflowId)
    .result()
    .catch(() => undefined);
  signed = await exportBundle(stack.client, plan.planId, { pinnedRootKeyId: stack.root.keyId });

  // As the web app submits: the signed-in device's name as a label, and no signed proposal.
  const web = await submitPlan(
    stack.client,
    { name: 'from the web', steps: [{ id: 'hello', run: 'echo hello' }] },
    { proposer: webLabel() },
  );
  await waitForStep(stack.client, web.planId, 'hello', 'awaiting_approval');
  await decide(stack.client, stack.root, web.planId, 'hello', { decision: 'approve' });
  await stack.client.workflow.getHandle(web.workflowId).result();
  unsigned = await exportBundle(stack.client, web.planId, { pinnedRootKeyId: stack.root.keyId });
}, 120_000);
afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- the forger's tools: edit the history JSON, then recompute the manifest ----

type JsonEvent = Record<string, unknown> & { eventId: string };
type Holder = { data: string };

const copy = (b = signed): AuditBundle => structuredClone(b);
function reseal(b: AuditBundle): AuditBundle {
  for (const entry of b.manifest.workflows) {
    const workflow = b.workflows.find((w) => w.workflowId === entry.workflowId)!;
    entry.sha256 = workflowDigest(workflow);
    entry.events = workflow.runs.reduce((n, r) => n + r.history.events.length, 0);
  }
  return b;
}
const verify = (b: AuditBundle) => verifyBundle(b, { rootKeyId: stack.root.keyId });
const failed = (verdict: BundleVerdict) =>
  Object.fromEntries(verdict.steps.filter((s) => s.verdict === 'failed').map((s) => [s.path, s.text]));
const eventsOf = (b: AuditBundle, workflow = 0) =>
  b.workflows[workflow]!.runs[0]!.history.events as JsonEvent[];
const attrs = (event: JsonEvent | undefined, key: string) =>
  event?.[key] as Record<string, unknown> | undefined;
const read = <T>(holder: Holder): T => JSON.parse(Buffer.from(holder.data, 'base64').toString('utf8')) as T;
const write = (holder: Holder, value: unknown) => {
  holder.data = Buffer.from(JSON.stringify(value)).toString('base64');
};
const firstPayload = (payloads: unknown) => (payloads as { payloads: Holder[] }).payloads[0]!;

interface RecordedResult {
  exitCode: number | null;
  outputTail: string;
  outputBytes: number;
  attestation?: unknown;
}

/** Index of the executor activity's completion for `step` in the plan's history. */
function resultIndex(b: AuditBundle, step: string): number {
  const events = eventsOf(b);
  const scheduled = events.find((e) => {
    const a = attrs(e, 'activityTaskScheduledEventAttributes');
    return (
      (a?.activityType as { name?: string } | undefined)?.name === 'runShellStep' &&
      read<{ step: { path: string } }>(firstPayload(a!.input)).step.path === step
    );
  });
  const index = events.findIndex(
    (e) => attrs(e, 'activityTaskCompletedEventAttributes')?.scheduledEventId === scheduled?.eventId,
  );
  if (index < 0) throw new Error(`no result of ${step} in the history`);
  return index;
}
/** The payload holding the result of `step`. */
const resultHolder = (b: AuditBundle, step: string): Holder =>
  firstPayload(attrs(eventsOf(b)[resultIndex(b, step)], 'activityTaskCompletedEventAttributes')!.result);
function rewriteResult(b: AuditBundle, step: string, change: (r: RecordedResult) => void): void {
  const holder = resultHolder(b, step);
  const result = read<RecordedResult>(holder);
  change(result);
  write(holder, result);
}

/** Removes events and renumbers the rest, references included, so the ids run 1, 2, 3… again. */
function removeEvents(b: AuditBundle, workflow: number, drop: (e: JsonEvent) => boolean): void {
  const events = eventsOf(b, workflow);
  const kept = events.filter((e) => !drop(e));
  const renumbered = new Map(kept.map((e, i) => [String(e.eventId), String(i + 1)]));
  const remap = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(remap);
    if (!value || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        /EventId$/.test(k) && renumbered.has(String(v)) ? renumbered.get(String(v)) : remap(v),
      ]),
    );
  };
  events.splice(
    0,
    events.length,
    ...kept.map((e) => ({ ...(remap(e) as JsonEvent), eventId: renumbered.get(e.eventId)! })),
  );
}

/** The plan's start input (its proposal, its proposer label) in the first run of `workflow`. */
function startInput(b: AuditBundle, workflow = 0) {
  const holder = firstPayload(
    attrs(eventsOf(b, workflow)[0], 'workflowExecutionStartedEventAttributes')!.input,
  );
  type Input = { proposer: string; proposal?: { payload: string; signatures: { sig: string }[] } };
  return { holder, input: read<Input>(holder) };
}

describe('an audit bundle rewritten by whoever holds it', () => {
  it('verifies as exported: every step ran as approved and as the executor signed, and the proposer is signed', () => {
    const verdict = verify(copy());
    expect(verdict.problems).toEqual([]);
    expect(verdict.warnings).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.proposer).toEqual({
      signed: true,
      text: `device "test phone" (signed proposal, ${stack.root.keyId.slice(0, 12)}…)`,
    });
    const byPath = Object.fromEntries(verdict.steps.map((s) => [s.path, s.verdict]));
    expect(byPath).toEqual({ build: 'ok', lint: 'ok', test: 'ok', write: 'ok' });
    // The results do carry the executor's signatures: that is what the rewrites below run into.
    expect(read<RecordedResult>(resultHolder(signed, 'build')).attestation).toBeDefined();
    expect(read<RecordedResult>(resultHolder(signed, 'test')).exitCode).toBe(1);
  });

  it('fails, naming both steps and their outputs, when two steps’ outputs are swapped', () => {
    const b = copy();
    const build = read<RecordedResult>(resultHolder(b, 'build'));
    const lint = read<RecordedResult>(resultHolder(b, 'lint'));
    rewriteResult(b, 'build', (r) =>
      Object.assign(r, { outputTail: lint.outputTail, outputBytes: lint.outputBytes }),
    );
    rewriteResult(b, 'lint', (r) =>
      Object.assign(r, { outputTail: build.outputTail, outputBytes: build.outputBytes }),
    );
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    expect(failed(verdict).build).toMatch(
      /its recorded result does not verify: the output recorded is not what executor ".+" signed/,
    );
    expect(failed(verdict).lint).toMatch(
      /its recorded result does not verify: the output recorded is not what executor ".+" signed/,
    );

    // Whole results swapped, signatures and all: each signature is for the other step.
    const whole = copy();
    const [a, c] = [resultHolder(whole, 'build'), resultHolder(whole, 'lint')];
    [a.data, c.data] = [c.data, a.data];
    const swapped = verify(reseal(whole));
    expect(swapped.ok).toBe(false);
    expect(failed(swapped).build).toMatch(
      /its recorded result does not verify: the step recorded is not what executor/,
    );
    expect(failed(swapped).lint).toMatch(
      /its recorded result does not verify: the step recorded is not what executor/,
    );
  });

  it('fails, naming the step and its output, when an output is rewritten to "all passed"', () => {
    const b = copy();
    rewriteResult(b, 'test', (r) => Object.assign(r, { outputTail: 'all passed\r\n', outputBytes: 12 }));
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    expect(failed(verdict).test).toMatch(
      /its recorded result does not verify: the output recorded is not what executor ".+" signed/,
    );

    // And with the signature stripped, as if it had never been signed: the close still names it.
    const stripped = copy();
    rewriteResult(stripped, 'test', (r) => {
      Object.assign(r, { outputTail: 'all passed\r\n', outputBytes: 12 });
      delete r.attestation;
    });
    const unsignedVerdict = verify(reseal(stripped));
    expect(unsignedVerdict.ok).toBe(false);
    expect(failed(unsignedVerdict).test).toMatch(
      /its recorded result does not verify: the result is not signed by an executor/,
    );
    expect(failed(unsignedVerdict).test).toMatch(
      /the executor signed a result for this step \(failed\) that the history does not hold/,
    );
  });

  it('fails, naming the step and its exit code, when an exit code is changed', () => {
    const b = copy();
    rewriteResult(b, 'test', (r) => {
      r.exitCode = 0;
    });
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    expect(failed(verdict).test).toMatch(/the exit code recorded is not what executor ".+" signed \(0 ≠ 1\)/);
    expect(Object.keys(failed(verdict))).toEqual(['test']);
  });

  it('fails, naming the plan’s ending and the step’s, when a failed plan is rewritten to have succeeded', () => {
    const b = copy();
    rewriteResult(b, 'test', (r) => {
      r.exitCode = 0;
    });
    const events = eventsOf(b);
    const last = events.at(-1)!;
    const failure = attrs(last, 'workflowExecutionFailedEventAttributes')!;
    const details = firstPayload(
      (failure.failure as { applicationFailureInfo: { details: unknown } }).applicationFailureInfo.details,
    );
    const result = read<{ status: string; steps: { path: string; status: string; exitCode?: number }[] }>(
      details,
    );
    result.status = 'succeeded';
    for (const step of result.steps)
      if (step.path === 'test') Object.assign(step, { status: 'succeeded', exitCode: 0 });
    write(details, result);
    events[events.length - 1] = {
      eventId: last.eventId,
      eventTime: last.eventTime,
      eventType: 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED',
      taskId: last.taskId,
      workflowExecutionCompletedEventAttributes: {
        result: { payloads: [details] },
        workflowTaskCompletedEventId: failure.workflowTaskCompletedEventId,
      },
    };
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    const test = failed(verdict).test;
    expect(test).toMatch(
      /the plan's ending does not verify: the history says it ended succeeded, and the close executor ".+" signed says failed/,
    );
    expect(test).toMatch(
      /its ending does not verify: the plan's end says it succeeded, and the signed close says failed/,
    );
    expect(test).toMatch(/the exit code recorded is not what executor ".+" signed \(0 ≠ 1\)/);
  });

  it('fails, naming the step it was cut after, when the history is cut after step one', () => {
    const b = copy();
    // Everything after the first step's result goes, the sub-plan with it.
    const end = resultIndex(b, 'build');
    eventsOf(b).splice(end + 1);
    b.workflows.splice(1, 1);
    b.manifest.workflows.splice(1, 1);
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    expect(verdict.problems).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^the history of ${b.manifest.planWorkflowId} ends at event ${end + 1}, after step "build" \\(step finished\\), without the plan's end and so without the close signed by the executor: it was cut short`,
        ),
      ),
    );

    // Cut, and given a forged end: the close signed by the executor is still missing.
    const ended = copy();
    const events = eventsOf(ended);
    const original = events.at(-1)!;
    events.splice(end + 1);
    events.push({
      eventId: String(end + 2),
      eventTime: original.eventTime,
      eventType: 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED',
      workflowExecutionCompletedEventAttributes: { workflowTaskCompletedEventId: String(end) },
    });
    ended.workflows.splice(1, 1);
    ended.manifest.workflows.splice(1, 1);
    const forged = verify(reseal(ended));
    expect(forged.ok).toBe(false);
    expect(failed(forged).build).toMatch(/the plan ended succeeded without a close signed by the executor/);
  });

  it('fails, naming the missing close, when the plan’s signed close is dropped', () => {
    const b = copy();
    const closeScheduled = eventsOf(b)
      .filter(
        (e) =>
          (attrs(e, 'activityTaskScheduledEventAttributes')?.activityType as { name?: string } | undefined)
            ?.name === 'attestPlanClose',
      )
      .map((e) => e.eventId);
    expect(closeScheduled).toHaveLength(1);
    removeEvents(b, 0, (e) =>
      [
        e.eventId,
        attrs(e, 'activityTaskStartedEventAttributes')?.scheduledEventId,
        attrs(e, 'activityTaskCompletedEventAttributes')?.scheduledEventId,
      ].some((id) => id !== undefined && closeScheduled.includes(String(id))),
    );
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    const names = failed(verdict);
    // Renumbered cleanly: only the missing close gives it away.
    expect(Object.values(names).join(' ')).not.toMatch(/missing event|out of order/);
    for (const step of ['build', 'lint', 'test'])
      expect(names[step]).toMatch(/the plan ended failed without a close signed by the executor/);
  });

  it('fails, naming the proposer, when the proposer is rewritten', () => {
    // The signed proposer itself, made another person's device: its signature no longer holds.
    const b = copy();
    const { holder, input } = startInput(b);
    const payload = JSON.parse(Buffer.from(input.proposal!.payload, 'base64').toString('utf8'));
    payload.proposer = { device: laptop.keyId };
    input.proposal!.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    write(holder, input);
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    expect(verdict.problems).toContainEqual(
      `${b.manifest.planWorkflowId}: the proposer does not verify: the proposal signature does not verify`,
    );
    expect(verdict.proposer.signed).toBe(false);

    // The label beside it, made to name the other device.
    const relabelled = copy();
    const label = startInput(relabelled);
    label.input.proposer = `cli:audit laptop (${laptop.keyId.slice(0, 8)})`;
    write(label.holder, label.input);
    const named = verify(reseal(relabelled));
    expect(named.ok).toBe(false);
    expect(named.problems).toContainEqual(
      expect.stringMatching(
        /the proposer does not verify: the plan says device "audit laptop" proposed it \("cli:audit laptop \([0-9a-f]{8}\)"\), and the signed proposal is by device "test phone"/,
      ),
    );

    // The proposal taken out, as if the web app had sent it: the sub-plan still carries it, and
    // the standing approval scoped to the signed proposer no longer applies.
    const stripped = copy();
    const plain = startInput(stripped);
    delete plain.input.proposal;
    plain.input.proposer = 'audit laptop';
    write(plain.holder, plain.input);
    const downgraded = verify(reseal(stripped));
    expect(downgraded.ok).toBe(false);
    expect(downgraded.proposer).toEqual({ signed: false, text: 'audit laptop' });
    expect(downgraded.warnings).toContainEqual(expect.stringMatching(/^proposer not signed: audit laptop/));
    expect(downgraded.problems).toContainEqual(
      expect.stringMatching(
        /\.docs: the proposer does not verify: the sub-plan does not carry the proposal of plan-\w+ \(another\)/,
      ),
    );
    expect(failed(downgraded).lint).toBeDefined();
  });
});

/** Whether `e` is the marker of the workflow patch `id`. */
function isPatch(e: JsonEvent, id: string): boolean {
  const details = attrs(e, 'markerRecordedEventAttributes')?.details as
    Record<string, { payloads: Holder[] }> | undefined;
  const holder = details?.['patch-data']?.payloads[0];
  return holder !== undefined && read<{ id?: string }>(holder).id === id;
}

/** Takes the executor's key out of every copy of the device records, in the histories and the bundle. */
function dropExecutorRecord(b: AuditBundle): void {
  const isExecutor = (e: { payload?: unknown }) => {
    try {
      const record = JSON.parse(Buffer.from(String(e.payload), 'base64').toString('utf8'));
      return record.type === 'introduce' && record.role === 'executor';
    } catch {
      return false;
    }
  };
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value))
      return value
        .filter((v) => !(v && typeof v === 'object' && 'signatures' in v && isExecutor(v)))
        .map(strip);
    if (!value || typeof value !== 'object') return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strip(v)]));
  };
  for (const workflow of b.workflows)
    for (const event of workflow.runs[0]!.history.events as JsonEvent[])
      JSON.stringify(event, (key, value: unknown) => {
        if (key !== 'payloads' || !Array.isArray(value)) return value;
        for (const holder of value as Holder[]) {
          try {
            write(holder, strip(read(holder)));
          } catch {
            // not JSON
          }
        }
        return undefined;
      });
  const kept = b.deviceRecords.filter((r) => !isExecutor(r));
  expect(kept.length).toBe(b.deviceRecords.length - 1);
  b.deviceRecords = kept;
  b.manifest.deviceRecords = kept.length;
}

describe('the executor key taken out of the device records', () => {
  it('fails when the history still bears the executor’s signatures', () => {
    const b = copy();
    dropExecutorRecord(b);
    rewriteResult(b, 'test', (r) => {
      r.exitCode = 0;
    });
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    expect(verdict.problems).toContainEqual(
      expect.stringMatching(
        /^the history of plan-\w+ bears an executor's signatures, and the device records it holds introduce no executor key: a record was taken out/,
      ),
    );
  });

  it('with every signature of the executor taken out too, no longer claims what ran', () => {
    const b = copy();
    dropExecutorRecord(b);
    for (const workflow of [0, 1]) {
      const events = eventsOf(b, workflow);
      const close = events
        .filter(
          (e) =>
            (attrs(e, 'activityTaskScheduledEventAttributes')?.activityType as { name?: string } | undefined)
              ?.name === 'attestPlanClose',
        )
        .map((e) => e.eventId);
      removeEvents(
        b,
        workflow,
        (e) =>
          [
            e.eventId,
            attrs(e, 'activityTaskStartedEventAttributes')?.scheduledEventId,
            attrs(e, 'activityTaskCompletedEventAttributes')?.scheduledEventId,
          ].some((id) => id !== undefined && close.includes(String(id))) || isPatch(e, 'attest-plan-close'),
      );
      for (const event of eventsOf(b, workflow)) {
        const done = attrs(event, 'activityTaskCompletedEventAttributes');
        if (!done?.result) continue;
        const holder = firstPayload(done.result);
        if (!holder?.data) continue;
        const value = read<Record<string, unknown>>(holder);
        if (value && typeof value === 'object' && 'attestation' in value) {
          delete value.attestation;
          write(holder, value);
        }
      }
    }
    const verdict = verify(reseal(b));
    // Device records are not chained to one another, so a verifier without its own copy of the
    // chain cannot tell this from a plan recorded before executors signed: it says so.
    expect(verdict.warnings).toContainEqual(
      expect.stringMatching(/^what ran in plan-\w+ is not signed by an executor/),
    );
    // A verifier with its own chain from the root (the CLI keeps one) finds the record taken out.
    const held = copy().deviceRecords;
    const withChain = verifyBundle(reseal(b), { rootKeyId: stack.root.keyId, heldRecords: held });
    expect(withChain.ok).toBe(false);
    expect(withChain.problems).toContainEqual(
      expect.stringMatching(
        /the bundle's device records leave out executor "[^"]+", introduced at .* before the plan started \(this verifier holds it\)|device record #\d+ in the bundle is not the one this verifier holds/,
      ),
    );
  });
});

describe('a plan proposed without a signature (the web app)', () => {
  it('verifies what ran, and says plainly that its proposer is not signed', () => {
    const verdict = verify(copy(unsigned));
    expect(verdict.problems).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.proposer).toEqual({ signed: false, text: webLabel() });
    expect(verdict.warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `^proposer not signed: ${webLabel().replace(/[()]/g, '\\$&')} — plan-\\w+ was submitted without a signed proposal`,
        ),
      ),
    ]);
    expect(verdict.steps).toMatchObject([{ path: 'hello', verdict: 'ok' }]);
  });

  it('is printed by the CLI as a warning beside the verdict', async () => {
    const file = join(dir, 'web.json');
    await writeFile(file, JSON.stringify(unsigned));
    const out = await promisify(execFile)(
      join(PROJECT_ROOT, 'bin', 'countersign'),
      ['audit', 'verify', file, '--root', stack.root.keyId],
      { env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', NO_COLOR: '1', COUNTERSIGN_HOME: dir } },
    );
    expect(out.stdout).toContain(`! proposer not signed: ${webLabel()}`);
    expect(out.stdout).toContain(`proposed by ${webLabel()} (not signed)`);
    expect(out.stdout).toMatch(/verified, with 1 warning/);
  });
});
