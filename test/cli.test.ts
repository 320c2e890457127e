/**
 * The `countersign` command end to end, as a person types it: pair, run the example plan,
 * approve through sequential, parallel and sub-plan steps, show, history; and the messages a
 * person meets when something is wrong.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPairing } from '../services/devices.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { readKeyFile } from '../workers/key-file.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { waitForStep, waitForView } from './support/plans.js';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack('cli', { pair: false });
});
afterAll(async () => stack?.close());

const cliEnv = () => ({
  ...process.env,
  COUNTERSIGN_HOME: stack.config.home,
  TEMPORAL_ADDRESS: stack.config.temporalAddress,
  COUNTERSIGN_TEMPORAL_TLS_DIR: stack.config.temporalTlsDir ?? '',
  TEMPORAL_NAMESPACE: stack.config.namespace,
  NO_COLOR: '1',
});

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(join(PROJECT_ROOT, 'bin', 'countersign'), args, {
      env: cliEnv(),
      cwd: PROJECT_ROOT,
    });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('countersign CLI', () => {
  let planId: string;

  it('pairs as the root device with the one-time code, and refuses a second pairing', async () => {
    const policy = await readKeyFile(stack.paths.policyKey);
    const code = (await openPairing(stack.client, policy!.publicKey))!;
    expect((await cli('pair', 'WRONG-CODE')).out).toContain('wrong pairing code');
    const paired = await cli('pair', code.toLowerCase(), '--name', 'ci laptop');
    expect(paired.code).toBe(0);
    expect(paired.out).toContain('paired ci laptop as the root device');
    expect((await cli('pair', code)).out).toContain('already the root device');
    const devices = await cli('devices');
    expect(devices.out).toMatch(/ci laptop\s+root\s+active/);
    expect(devices.out).toMatch(/policy \(applies standing approvals\)\s+policy\s+active/);
  });

  it('runs the example plan through every kind of node with CLI approvals and a standing approval', async () => {
    // The listing asks for a standing approval: this CLI's device signs one, as the example says.
    const granted = await cli('grants', 'add', '--run', 'ls -la', '--mine', '--name', 'list the workspace');
    expect(granted.code, granted.out).toBe(0);
    expect(granted.out).toMatch(/signed standing approval [0-9a-f]{16} with ci laptop/);
    const grants = await cli('grants');
    expect(grants.out).toContain('list the workspace');
    expect(grants.out).toContain('`ls -la` exactly, for plans "ci laptop" proposes');
    const run = await cli('plan', 'run', 'examples/hello.yaml');
    expect(run.code).toBe(0);
    planId = /plan (\w+) started/.exec(run.out)![1]!;
    expect(run.out).toContain(`countersign approve ${planId} scaffold`);
    for (const step of ['scaffold', 'count-lines', 'check-syntax', 'review-source']) {
      await waitForStep(stack.client, planId, step, 'awaiting_approval');
      const approved = await cli('approve', planId, step);
      expect(approved.out).toContain(`approved ${step} as ci laptop`);
    }
    await waitForView(stack.client, planId, (v) => v.subPlans[0]?.status === 'running');
    await waitForStep(stack.client, `plan-${planId}.docs`, 'write-readme', 'awaiting_approval');
    expect((await cli('approve', planId, 'docs/write-readme')).code).toBe(0);
    await waitForStep(stack.client, planId, 'ship-it', 'awaiting_approval');
    const shown = await cli('plan', 'show', planId);
    expect(shown.out).toMatch(
      /look-around.*succeeded.*approved by standing approval "list the workspace" \(signed by ci laptop\)/,
    );
    expect(shown.out).toMatch(/write-readme\s+✓ succeeded/);
    expect(shown.out).toContain(`countersign approve ${planId} ship-it`);
    expect((await cli('plan', 'ls', '--awaiting')).out).toContain(`plan-${planId}`);
    expect((await cli('deny', planId, 'ship-it', '--reason', 'not on a Friday')).out).toContain(
      'denied ship-it',
    );
    await stack.client.workflow
      .getHandle(`plan-${planId}`)
      .result()
      .catch(() => undefined);
    const history = await cli('history', planId);
    expect(history.out).toMatch(/✓ approval\s+scaffold\s+approved by "ci laptop"/);
    expect(history.out).toMatch(
      /✓ standing approval\s+look-around\s+approved by standing approval "list the workspace" \([0-9a-f]{16}: `ls -la` exactly, for plans "ci laptop" proposes, until [^;]+; signed by "ci laptop" on [^)]+\), applied by the policy key/,
    );
    expect(history.out).toMatch(/✓ denial\s+ship-it\s+denied by "ci laptop".*not on a Friday/);
    expect(history.out).toContain('plan "hello countersign" failed');
  });

  it('follows a plan live with --watch, output included, until it ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'countersign-cli-'));
    // The step ticks until the test has seen the watcher show its live output, then ends.
    const run = `i=0; while [ ! -f seen ] && [ $i -lt 120 ]; do i=$((i+1)); echo tick-$i; sleep 0.5; done`;
    await writeFile(
      join(dir, 'ticker.yaml'),
      `name: ticker\nsteps:\n  - { id: tick, run: '${run}', approval: auto }\n`,
    );
    // A standing approval for exactly this command, so the step runs without anyone approving it.
    const granted = await cli('grants', 'add', '--run', run, '--mine', '--name', 'ticker');
    expect(granted.code, granted.out).toBe(0);
    const started = await cli('plan', 'run', join(dir, 'ticker.yaml'));
    const id = /plan (\w+) started/.exec(started.out)![1]!;
    const watch = spawn(join(PROJECT_ROOT, 'bin', 'countersign'), ['plan', 'show', id, '--watch'], {
      env: cliEnv(),
      cwd: PROJECT_ROOT,
    });
    let out = '';
    setTimeout(() => watch.kill(), 90_000).unref(); // a watcher that never ends fails below, readably
    watch.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (/── live output of tick ──[\s\S]*tick-\d/.test(out))
        void writeFile(join(stack.paths.workspaces, id, 'seen'), '');
    });
    const code = await new Promise<number | null>((resolve) => watch.once('exit', resolve));
    expect(code).toBe(0);
    expect(out).toContain('── live output of tick ──');
    expect(out).toMatch(/tick-\d+/);
    expect(out).toMatch(/plan \w+ "ticker"\s+✓ succeeded/);
  });

  it('says what is wrong, and starts nothing, for bad plans and bad requests', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'countersign-cli-'));
    await writeFile(
      join(dir, 'bad.yaml'),
      'name: bad\nsteps:\n  - id: a\n    run: 42\n  - parallel:\n      - id: b\n        shell: ls\n',
    );
    const bad = await cli('plan', 'run', join(dir, 'bad.yaml'));
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('plan is invalid (nothing was started)');
    expect(bad.out).toContain('steps[0].run: expected string');
    expect(bad.out).toContain('steps[1].parallel[0]: unknown node');
    await writeFile(
      join(dir, 'huge.json'),
      JSON.stringify({ name: 'huge', steps: [{ id: 'x', run: 'x'.repeat(10 * 1024 * 1024) }] }),
    );
    const huge = await cli('plan', 'run', join(dir, 'huge.json'));
    expect(huge.out).toMatch(/is \d+ bytes; the limit is 524288/);
    const before = (await cli('plan', 'ls')).out;
    expect(before).not.toContain('"bad"');
    expect((await cli('approve', planId, 'nope')).out).toContain('has no step "nope"');
    expect((await cli('approve', 'doesnotexist', 'x')).out).toContain('no such plan');
    expect((await cli('frobnicate')).code).toBe(64);
  });
});
