/**
 * What the CLI prints of a plan is the plan's own text, and a plan is untrusted: names, gate
 * messages, commands and outputs with terminal escapes (ESC[2J clears the approver's screen,
 * ESC[8m hides what follows, an OSC retitles the window) reach `plan run`, `plan show`, `plan ls`
 * and `history` cleaned, with their visible text kept. A NUL byte never gets into a new plan;
 * one in a plan started around the CLI, straight on Temporal, is cleaned all the same.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planWorkflowId, SEARCH_ATTRIBUTES, TASK_QUEUES } from '../core/names.js';
import { openPairing, registryView } from '../services/devices.js';
import { listPlans, newPlanId } from '../services/plans.js';
import type { PlanWorkflowInput } from '../workflows/messages.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { readKeyFile } from '../workers/key-file.js';
import { waitForStep, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

const ESC = '\u001b';
const CLEAR = `${ESC}[2J${ESC}[H`;
const HIDE = `${ESC}[8m`;
const TITLE = `${ESC}]0;pwned\u0007`;
/** Bytes no output of the CLI may hold: ESC, NUL, and the C1 CSI. */
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000\u001b\u009b]/;

let stack: TestStack;
let dir: string;
beforeAll(async () => {
  stack = await startTestStack('cli-display', { pair: false });
  const policy = await readKeyFile(stack.paths.policyKey);
  const code = (await openPairing(stack.client, policy!.publicKey))!;
  const paired = await cli('pair', code, '--name', 'display laptop');
  expect(paired.code, paired.out).toBe(0);
  dir = await mkdtemp(join(tmpdir(), 'cli-display-'));
});
afterAll(async () => stack?.close());

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const env = {
    ...process.env,
    COUNTERSIGN_HOME: stack.config.home,
    TEMPORAL_ADDRESS: stack.config.temporalAddress,
    COUNTERSIGN_TEMPORAL_TLS_DIR: stack.config.temporalTlsDir ?? '',
    TEMPORAL_NAMESPACE: stack.config.namespace,
    NO_COLOR: '1',
  };
  try {
    const { stdout, stderr } = await promisify(execFile)(join(PROJECT_ROOT, 'bin', 'countersign'), args, {
      env,
      cwd: PROJECT_ROOT,
    });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

/** The command's output, failing the test when it holds a raw escape or NUL (shown escaped). */
async function shown(...args: string[]): Promise<string> {
  const { code, out } = await cli(...args);
  expect(code, `${args.join(' ')}: ${JSON.stringify(out)}`).toBe(0);
  expect(out, `${args.join(' ')}: ${JSON.stringify(out)}`).not.toMatch(RAW);
  return out;
}

async function planFile(name: string, plan: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(plan));
  return file;
}

describe('what the CLI shows of a plan', () => {
  it('cleans escapes from the plan name, step names, gate messages, commands and outputs, keeping their text', async () => {
    const file = await planFile('hostile.json', {
      name: `${CLEAR}release ${HIDE}concealed`,
      description: `${TITLE}about`,
      steps: [
        {
          id: 'build',
          name: `${HIDE}build-name\u009b`,
          run: `echo "${CLEAR}${HIDE}hidden-run"; printf 'line\\r${ESC}[2Joverwritten\\n'`,
        },
        { id: 'ship', gate: `${CLEAR}${TITLE}ship it? ${HIDE}hidden-gate` },
      ],
    });
    const run = await shown('plan', 'run', file);
    const planId = /plan (\w+) started/.exec(run)![1]!;
    expect(run).toContain('build: $ echo "hidden-run"');
    expect(run).toContain(`countersign approve ${planId} build`);

    await waitForStep(stack.client, planId, 'build', 'awaiting_approval');
    const show = await shown('plan', 'show', planId);
    expect(show).toContain(`plan ${planId} "release concealed"`);
    expect(show).toContain('build (build-name)');
    expect(show).toContain('$ echo "hidden-run"');
    expect(show).toContain('gate: ship it? hidden-gate');
    expect(show).not.toContain('pwned');
    // JSON keeps every byte of the plan, escaped as JSON writes it.
    const json = await shown('plan', 'show', planId, '--json');
    const { view } = JSON.parse(json) as { view: { name: string; steps: { node: { name?: string } }[] } };
    expect(view.name).toBe(`${CLEAR}release ${HIDE}concealed`);
    expect(view.steps[0]!.node.name).toBe(`${HIDE}build-name\u009b`);
    expect(await shown('plan', 'ls')).toMatch(new RegExp(`plan-${planId}\\s+.*release concealed`));
    expect(await shown('plan', 'ls', '--awaiting')).toContain('release concealed');

    expect(await shown('approve', planId, 'build')).toContain('$ echo "hidden-run"');
    await waitForStep(stack.client, planId, 'ship', 'awaiting_approval');
    expect(await shown('deny', planId, 'ship', '--reason', 'not today')).toContain(
      'gate: ship it? hidden-gate',
    );
    await waitForView(stack.client, planId, (v) => v.status === 'failed');

    const ended = await shown('plan', 'show', planId);
    expect(ended).toMatch(/build \(build-name\)\s+✓ succeeded/);
    const history = await shown('history', planId);
    expect(history).toContain('plan "release concealed"');
    expect(history).toContain('hidden-run');
    expect(history).toContain('overwritten');
    expect(history).toMatch(/denial\s+ship\s+denied by "display laptop".*not today/);
  });

  it('refuses a NUL byte anywhere in a new plan, and control characters in a cwd or an env value, with their paths', async () => {
    const before = (await listPlans(stack.client)).length;
    const file = await planFile('nul.json', {
      name: `nul\u0000${CLEAR}name`,
      steps: [
        {
          id: 'a',
          name: `step\u0000`,
          run: 'true',
          cwd: `src${ESC}[8m`,
          env: { KEY: `x${ESC}y`, OK: 'a\nb' },
        },
        { id: 'g', gate: `ok?\u0000`, approval: { timeout: '999999999d', remind: '1ms' } },
      ],
    });
    const refused = await cli('plan', 'run', file);
    expect(refused.code).toBe(1);
    expect(refused.out).not.toMatch(RAW);
    for (const line of [
      'name: must not contain a NUL byte (\\0)',
      'steps[0].name: must not contain a NUL byte (\\0)',
      'steps[1].gate: must not contain a NUL byte (\\0)',
      'steps[0].cwd: must not contain control characters',
      'steps[0].env.KEY: must not contain control characters other than tab and newline',
      'steps[1].approval.timeout: at most 30d (the longest a gate may wait for a decision)',
      'steps[1].approval.remind: at least 1m (reminders more often would flood the approvers)',
    ])
      expect(refused.out).toContain(line);
    expect(refused.out).not.toContain('steps[0].env.OK');
    expect((await listPlans(stack.client)).length).toBe(before);
  });

  it('cleans a plan with NUL bytes started around the CLI, straight on Temporal, which the workflow refuses', async () => {
    const planId = newPlanId();
    const name = `evil\u0000${CLEAR}name ${HIDE}concealed`;
    const input: PlanWorkflowInput = {
      planId,
      plan: { name, steps: [{ id: 'a', name: `${HIDE}x\u0000`, run: `true\u0000` }] },
      workspaceId: planId,
      proposer: `${CLEAR}mallory\u0000`,
      trustRecords: (await registryView(stack.client)).records,
    };
    const handle = await stack.client.workflow.start('planWorkflow', {
      workflowId: planWorkflowId(planId),
      taskQueue: TASK_QUEUES.control,
      args: [input],
      searchAttributes: {
        [SEARCH_ATTRIBUTES.status.name]: ['running'],
        [SEARCH_ATTRIBUTES.planName.name]: [name],
      },
    });
    await expect(handle.result()).rejects.toThrow();

    const listed = await shown('plan', 'ls');
    expect(listed).toMatch(new RegExp(`plan-${planId}\\s+.*evilname concealed`));
    const history = await shown('history', planId);
    expect(history).toContain('plan "evilname concealed"');
    expect(history).toContain('mallory');
    expect(history).toContain('must not contain a NUL byte');
  });
});
