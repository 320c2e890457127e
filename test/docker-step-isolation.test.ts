/**
 * Steps of one plan cannot reach each other on the Docker backend (issue 15): each step runs in a
 * process world of its own, so what one step leaves behind — a daemon, a fork bomb, a process
 * that ignores SIGTERM, a setsid child, files in /tmp — is gone when it ends, and cannot see, touch
 * or write into a later step. And the Docker client the runner starts reads no configuration
 * another local user could plant.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../sandbox/docker/container-policy.js';
import { cancelPlan, decide, planView } from '../services/plans.js';
import { submitGranted } from './support/grants.js';
import { containersOf, readWorkspaceFile, removeDockerLeftovers } from './support/docker.js';
import { stepOf, waitForStep, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
const plans: string[] = [];
beforeAll(async () => {
  stack = await startTestStack('docker-step-isolation', { backend: 'docker' });
});
afterAll(async () => {
  await removeDockerLeftovers(plans);
  await stack?.close();
});

/** Submits `plan` signed by the root device, whose exact grants let its `approval: auto` steps run without a person. */
async function submitAuto(plan: Record<string, unknown>) {
  const submitted = await submitGranted(stack.client, stack.root, plan);
  plans.push(submitted.planId);
  return submitted;
}

const stepContainers = async (planId: string, step: string) =>
  (await containersOf([planId])).filter((c) => c.Labels[LABELS.step] === step);

/** The millisecond timestamps a step appended to a workspace file, one per line. */
const stamps = async (planId: string, file: string) =>
  (await readWorkspaceFile(planId, file).catch(() => ''))
    .split('\n')
    .filter((line) => /^\d{13}$/.test(line))
    .map(Number);

describe('every step in its own process world', () => {
  it("a daemon left by one step cannot read the next step's environment or memory, nor write into its output", async () => {
    const secret = `s3cret-${randomBytes(6).toString('hex')}`;
    // Every 0.1 s: read every process's environment; where it finds the secret, open that
    // process's memory read-write and write into its terminal.
    const spy = [
      'while :; do',
      '  date +%s%3N >> spy-alive',
      '  for p in /proc/[0-9]*; do',
      '    if tr "\\0" "\\n" < $p/environ 2>/dev/null | grep STEP_SECRET >> spy-loot; then',
      '      (exec 3<>$p/mem) 2>/dev/null && echo "opened-mem-of-$p" >> spy-loot',
      '      echo INJECTED-BY-THE-SPY > $p/fd/1 2>/dev/null',
      '    fi',
      '  done',
      '  sleep 0.1',
      'done',
    ].join('\n');
    const { planId, workflowId } = await submitAuto({
      name: 'docker-spy',
      steps: [
        {
          id: 'plant',
          run: `cat > spy.sh <<'EOF'\n${spy}\nEOF\nsetsid sh spy.sh </dev/null >/dev/null 2>&1 &\nsleep 1; echo planted`,
          approval: 'auto',
        },
        {
          id: 'victim',
          run: 'sleep 3; echo victim-done',
          env: { STEP_SECRET: secret },
          approval: 'auto',
        },
      ],
    });
    await stack.client.workflow.getHandle(workflowId).result();
    const view = await planView(stack.client, planId);
    expect(view.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
    const alive = await stamps(planId, 'spy-alive');
    // The spy did run (for its second in the first step), and not a moment past its step's end.
    expect(alive.length).toBeGreaterThan(0);
    expect(Math.max(...alive)).toBeLessThanOrEqual(Date.parse(stepOf(view, 'plant').result!.finishedAt));
    const loot = await readWorkspaceFile(planId, 'spy-loot').catch(() => '');
    expect(loot).not.toContain(secret);
    expect(loot).not.toMatch(/opened-mem-of/);
    expect(stepOf(view, 'victim').result?.outputTail).toContain('victim-done');
    expect(stepOf(view, 'victim').result?.outputTail).not.toContain('INJECTED');
  });

  it('/tmp is fresh for every step', async () => {
    const { planId, workflowId } = await submitAuto({
      name: 'docker-tmp',
      steps: [
        { id: 'leave', run: 'echo left > /tmp/left-behind && echo wrote-tmp', approval: 'auto' },
        {
          id: 'look',
          run: 'test -e /tmp/left-behind && echo TMP:carried-over || echo TMP:fresh',
          approval: 'auto',
        },
      ],
    });
    await stack.client.workflow.getHandle(workflowId).result();
    const view = await planView(stack.client, planId);
    expect(stepOf(view, 'leave').result?.outputTail).toContain('wrote-tmp');
    expect(stepOf(view, 'look').result?.outputTail).toContain('TMP:fresh');
  });

  it('a fork bomb is gone with its step: no container of it remains, and the next step forks normally', async () => {
    const { planId, workflowId } = await submitAuto({
      name: 'docker-fork-bomb',
      steps: [
        // Every copy forks copies for ever, deaf to the terminal's hang-up: the pids limit is
        // reached at once, and stays reached.
        {
          id: 'bomb',
          run: "trap '' HUP; b() { while :; do b & done; }; b & echo bomb-lit",
          approval: 'auto',
        },
        { id: 'look', gate: 'the bomb step has ended' },
        {
          id: 'forks',
          run: 'for i in $(seq 1 100); do /bin/true || echo FORK-FAILED; done; echo forks-ok',
          approval: 'auto',
        },
      ],
    });
    await waitForStep(stack.client, planId, 'look', 'awaiting_approval');
    expect(stepOf(await planView(stack.client, planId), 'bomb').status).toBe('succeeded');
    expect(await stepContainers(planId, 'bomb')).toEqual([]);
    await decide(stack.client, stack.root, planId, 'look', { decision: 'approve' });
    await stack.client.workflow.getHandle(workflowId).result();
    const forks = stepOf(await planView(stack.client, planId), 'forks');
    expect(forks.status).toBe('succeeded');
    expect(forks.result?.outputTail).toContain('forks-ok');
    expect(forks.result?.outputTail).not.toMatch(/FORK-FAILED|Cannot fork|Resource temporarily unavailable/);
    expect(await containersOf([planId])).toEqual([]);
  });

  it('a step that ignores SIGTERM, and its setsid child, are gone when the step is reported stopped at its time limit', async () => {
    const stubborn = [
      "trap '' TERM",
      `setsid sh -c 'trap "" TERM; while :; do date +%s%3N >> child-alive; sleep 0.1; done' </dev/null >/dev/null 2>&1 &`,
      'while :; do date +%s%3N >> parent-alive; sleep 0.1; done',
    ].join('\n');
    const { planId } = await submitAuto({
      name: 'docker-stubborn',
      steps: [
        {
          parallel: [
            { id: 'stubborn', run: stubborn, timeout: '3s', approval: 'auto' },
            // Keeps the plan open (and its workspace unreleased) after the stubborn step failed.
            { id: 'open', run: 'sleep 30', approval: 'auto' },
          ],
          failFast: false,
        },
      ],
    });
    const view = await waitForStep(stack.client, planId, 'stubborn', 'failed', 60_000);
    const step = stepOf(view, 'stubborn');
    expect(step.error).toBe('stopped at its time limit of 3s');
    expect(step.result?.timedOut).toBe(true);
    const reportedAt = Date.parse(step.result!.finishedAt);
    const parent = await stamps(planId, 'parent-alive');
    const child = await stamps(planId, 'child-alive');
    expect(parent.length).toBeGreaterThan(5);
    expect(child.length).toBeGreaterThan(5);
    // Nothing of the step wrote after the moment it was reported stopped, nor does later.
    expect(Math.max(...parent, ...child)).toBeLessThanOrEqual(reportedAt);
    await sleep(1_500);
    expect(await stamps(planId, 'parent-alive')).toEqual(parent);
    expect(await stamps(planId, 'child-alive')).toEqual(child);
    expect(await stepContainers(planId, 'stubborn')).toEqual([]);
    await cancelPlan(stack.client, planId);
    await waitForView(stack.client, planId, (v) => v.status === 'failed' || v.status === 'cancelled');
  });

  it("the Docker client a step's runner starts ignores a docker config planted in /tmp", async () => {
    // A context named "evil" pointing at a host where no engine listens, made current for any
    // Docker client whose HOME is /tmp (as the runner's was).
    const planted = '/tmp/.docker';
    expect(existsSync(planted)).toBe(false);
    const meta = join(planted, 'contexts', 'meta', createHash('sha256').update('evil').digest('hex'));
    await mkdir(meta, { recursive: true });
    await writeFile(join(planted, 'config.json'), JSON.stringify({ currentContext: 'evil' }));
    await writeFile(
      join(meta, 'meta.json'),
      JSON.stringify({
        Name: 'evil',
        Metadata: {},
        Endpoints: { docker: { Host: 'tcp://127.0.0.1:9', SkipTLSVerify: false } },
      }),
    );
    try {
      // The control: a client with HOME=/tmp does follow it.
      const followed = await promisify(execFile)('docker', ['ps'], {
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp' },
      }).catch((error: { stderr: string }) => error);
      expect(followed.stderr).toContain('tcp://127.0.0.1:9');
      const { planId, workflowId } = await submitAuto({
        name: 'docker-planted-config',
        steps: [{ id: 'run', run: 'echo ran-on-our-engine', approval: 'auto' }],
      });
      await stack.client.workflow.getHandle(workflowId).result();
      const step = stepOf(await planView(stack.client, planId), 'run');
      expect(step.status).toBe('succeeded');
      expect(step.result?.outputTail).toContain('ran-on-our-engine');
    } finally {
      await rm(planted, { recursive: true, force: true });
    }
    // The client's own folder: the executor's, closed to everyone else.
    const own = await stat(join(stack.config.home, 'executor', 'docker-client'));
    expect(own.mode & 0o777).toBe(0o700);
    expect(own.uid).toBe(process.getuid!());
  });
});
