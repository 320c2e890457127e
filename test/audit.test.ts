/**
 * The audit bundle of a real plan (approved, auto-approved, sub-plan and denied steps) verifies
 * offline; then it is attacked the way someone with the file would: an approval's bytes flipped,
 * an event deleted, events reordered, device records swapped. The manifest is re-sealed after
 * each change (any forger can recompute a hash), so only the real checks can catch it, and each
 * verdict must name the step it touches.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBundle, workflowDigest, type AuditBundle } from '../services/audit/bundle.js';
import { verifyBundle, type BundleVerdict } from '../services/audit/verify.js';
import type { GrantRecord } from '../core/grants/grant.js';
import { decide } from '../services/plans.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { grantFor, shell, submitSigned } from './support/grants.js';
import { waitForStep, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let bundle: AuditBundle;
let dir: string;
let grant: GrantRecord;

beforeAll(async () => {
  stack = await startTestStack('audit');
  dir = await mkdtemp(join(tmpdir(), 'countersign-audit-'));
  // The auto step runs on a standing approval the root device signed; the plan is proposed signed.
  grant = await grantFor(stack.client, stack.root, { name: 'say auto', covers: shell('echo auto') });
  const { planId, workflowId } = await submitSigned(stack.client, stack.root, {
    name: 'audited',
    steps: [
      { id: 'build', run: 'echo built' },
      { id: 'auto', run: 'echo auto', approval: 'auto' },
      { id: 'docs', plan: { name: 'docs', steps: [{ id: 'write', run: 'echo docs' }] } },
      { id: 'ship', gate: 'Ship it?' },
    ],
  });
  await waitForStep(stack.client, planId, 'build', 'awaiting_approval');
  await decide(stack.client, stack.root, planId, 'build', { decision: 'approve' });
  await waitForView(stack.client, planId, (v) => v.subPlans[0]?.status === 'running');
  await waitForStep(stack.client, `${workflowId}.docs`, 'write', 'awaiting_approval');
  await decide(stack.client, stack.root, planId, 'docs/write', { decision: 'approve' });
  await waitForStep(stack.client, planId, 'ship', 'awaiting_approval');
  await decide(stack.client, stack.root, planId, 'ship', { decision: 'deny', reason: 'not today' });
  await stack.client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined);
  bundle = await exportBundle(stack.client, planId, { pinnedRootKeyId: stack.root.keyId });
}, 120_000);
afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const copy = (): AuditBundle => structuredClone(bundle);
/** What a forger does after editing: recompute the manifest's hashes. */
function reseal(b: AuditBundle): AuditBundle {
  for (const entry of b.manifest.workflows)
    entry.sha256 = workflowDigest(b.workflows.find((w) => w.workflowId === entry.workflowId)!);
  return b;
}
const verify = (b: AuditBundle) => verifyBundle(b, { rootKeyId: stack.root.keyId });
const failed = (verdict: BundleVerdict) =>
  Object.fromEntries(verdict.steps.filter((s) => s.verdict === 'failed').map((s) => [s.path, s.text]));

type JsonEvent = Record<string, Record<string, unknown> | string | undefined> & { eventId: string };
const eventsOf = (b: AuditBundle, workflow = 0) =>
  b.workflows[workflow]!.runs[0]!.history.events as JsonEvent[];

/** The JSON payload (base64 in the history) of the Update that carried the approval of `step`. */
function approvalPayload(
  b: AuditBundle,
  step: string,
): {
  holder: { data: string };
  submission: { envelope: { payload: string; signatures: { sig: string }[] } };
} {
  for (const event of eventsOf(b)) {
    const accepted = event.workflowExecutionUpdateAcceptedEventAttributes as
      { acceptedRequest?: { input?: { args?: { payloads?: { data: string }[] } } } } | undefined;
    const holder = accepted?.acceptedRequest?.input?.args?.payloads?.[0];
    if (!holder) continue;
    const submission = JSON.parse(Buffer.from(holder.data, 'base64').toString('utf8'));
    const claimed = JSON.parse(Buffer.from(submission.envelope.payload, 'base64').toString('utf8'));
    if (claimed.stepPath === step) return { holder, submission };
  }
  throw new Error(`no approval of ${step} in the history`);
}

/** Index of the executor activity scheduled for `step` in the plan's first run. */
function scheduledIndex(b: AuditBundle, step: string): number {
  return eventsOf(b).findIndex((e) => {
    const attrs = e.activityTaskScheduledEventAttributes as
      { activityType?: { name?: string }; input?: { payloads?: { data: string }[] } } | undefined;
    if (attrs?.activityType?.name !== 'runShellStep') return false;
    const input = JSON.parse(Buffer.from(attrs.input!.payloads![0]!.data, 'base64').toString('utf8'));
    return input.step.path === step;
  });
}

describe('an audit bundle of a real plan', () => {
  it('verifies offline: approved, granted (auto) and sub-plan steps ran as approved, the denied one did not run', () => {
    const verdict = verify(copy());
    expect(verdict.problems).toEqual([]);
    expect(verdict.ok).toBe(true);
    const byPath = Object.fromEntries(verdict.steps.map((s) => [s.path, s]));
    expect(byPath.build).toMatchObject({ verdict: 'ok', text: 'ran as approved: approved by "test phone"' });
    expect(byPath.auto).toMatchObject({
      verdict: 'ok',
      text: `ran as approved: standing approval "say auto" (${grant.grantId}: \`echo auto\` exactly, for plans "test phone" proposes, until ${grant.expiresAt}; signed by "test phone")`,
    });
    expect(byPath.write).toMatchObject({ verdict: 'ok', workflowId: expect.stringMatching(/\.docs$/) });
    expect(byPath.ship).toMatchObject({ verdict: 'not_run', text: 'did not run (denied by "test phone")' });
    expect(bundle.workflows).toHaveLength(2);
    expect(bundle.approvals.length).toBeGreaterThanOrEqual(4);
  });

  it('fails, naming the step, when any byte of an approval is flipped', () => {
    const { submission } = approvalPayload(bundle, 'build');
    const fields = ['payload', 'sig'] as const;
    for (const field of fields) {
      const text = field === 'payload' ? submission.envelope.payload : submission.envelope.signatures[0]!.sig;
      for (const position of [0, 7, Math.floor(text.length / 2), text.length - 3]) {
        const b = copy();
        const { holder, submission: s } = approvalPayload(b, 'build');
        const original = field === 'payload' ? s.envelope.payload : s.envelope.signatures[0]!.sig;
        const flipped =
          original.slice(0, position) +
          (original[position] === 'A' ? 'B' : 'A') +
          original.slice(position + 1);
        if (field === 'payload') s.envelope.payload = flipped;
        else s.envelope.signatures[0]!.sig = flipped;
        holder.data = Buffer.from(JSON.stringify(s)).toString('base64');
        const verdict = verify(reseal(b));
        expect(verdict.ok, `${field}[${position}]`).toBe(false);
        expect(Object.keys(failed(verdict)), `${field}[${position}]`).toContain('build');
      }
    }
  });

  it('fails, naming the step, when an event is deleted', () => {
    const b = copy();
    eventsOf(b).splice(scheduledIndex(b, 'build'), 1);
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    expect(failed(verdict).build).toMatch(/is missing event \d+ \(deleted from the history\?\)/);
  });

  it('fails, naming the step, when events are reordered', () => {
    const b = copy();
    const events = eventsOf(b);
    const i = scheduledIndex(b, 'build');
    [events[i], events[i + 1]] = [events[i + 1]!, events[i]!];
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    expect(failed(verdict).build).toMatch(/has its events out of order/);
  });

  it('fails, naming every approved step, when device records are swapped', () => {
    const b = copy();
    expect(b.deviceRecords.length).toBeGreaterThanOrEqual(2);
    [b.deviceRecords[0], b.deviceRecords[1]] = [b.deviceRecords[1]!, b.deviceRecords[0]!];
    const verdict = verify(reseal(b));
    expect(verdict.ok).toBe(false);
    const names = failed(verdict);
    expect(names.build).toMatch(/device record/);
    expect(names.write).toMatch(/device record/);
  });

  it("fails against a root the plan's devices do not chain to", () => {
    const verdict = verifyBundle(copy(), { rootKeyId: 'ab'.repeat(16) });
    expect(verdict.ok).toBe(false);
    expect(failed(verdict).build).toMatch(/do(es)? not chain to/);
  });

  it('does not verify without a root to trust, or with a sub-plan left out', () => {
    const unrooted = verifyBundle(copy(), {});
    expect(unrooted.ok).toBe(false);
    expect(unrooted.problems[0]).toMatch(/^no root device was given to verify against/);
    const b = copy();
    b.workflows.splice(1, 1);
    b.manifest.workflows.splice(1, 1);
    const partial = verify(b);
    expect(partial.ok).toBe(false);
    expect(partial.problems).toContainEqual(
      expect.stringMatching(/starts the sub-plan plan-\w+\.docs, and the bundle lacks it$/),
    );
  });

  it('works from the CLI without a server: exit 0 when it verifies, 1 when tampered', async () => {
    const cli = async (...args: string[]) =>
      promisify(execFile)(join(PROJECT_ROOT, 'bin', 'countersign'), args, {
        env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', NO_COLOR: '1', COUNTERSIGN_HOME: dir },
      }).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
    const good = join(dir, 'good.json');
    await writeFile(good, JSON.stringify(bundle));
    const ok = await cli('audit', 'verify', good, '--root', stack.root.keyId);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('✓ build  ran as approved: approved by "test phone"');
    expect(ok.out).toContain('verified: every step the history shows as run was approved as required');
    const b = copy();
    eventsOf(b).splice(scheduledIndex(b, 'build'), 1);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify(reseal(b)));
    const refused = await cli('audit', 'verify', bad, '--root', stack.root.keyId);
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(/✗ build .*missing event/);
    expect(refused.out).toContain('NOT verified');
    const garbage = join(dir, 'garbage.json');
    await writeFile(garbage, '{"hello":1}');
    const notBundle = await cli('audit', 'verify', garbage);
    expect(notBundle.code).toBe(1);
    expect(notBundle.out).toContain('not a Countersign audit bundle');
  });
});
