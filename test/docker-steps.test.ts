/**
 * Shell steps on the Docker backend: one hardened container per step, over the plan's named
 * volume that carries files from step to step, and the step's view of its own box checked from
 * inside.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBroker } from '../sandbox/docker/broker.js';
import { WORKSPACE_IMAGE, workspaceVolumeName } from '../sandbox/docker/docker-backend.js';
import { LABELS } from '../sandbox/docker/container-policy.js';
import { cancelPlan, planView } from '../services/plans.js';
import { submitGranted } from './support/grants.js';
import { containersOf, removeDockerLeftovers } from './support/docker.js';
import { waitUntil } from './support/process-stack.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { waitForView } from './support/plans.js';

let stack: TestStack;
let broker: DockerBroker;
const plans: string[] = [];
beforeAll(async () => {
  stack = await startTestStack('docker', { backend: 'docker' });
  broker = await DockerBroker.connect([WORKSPACE_IMAGE], { info: () => undefined });
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

describe('the Docker backend', () => {
  it('runs each step of a plan in a container of its own, over the volume that carries files from step to step', async () => {
    const steps = [
      { id: 'write', run: 'mkdir -p out && echo from-step-one > out/note && id -u', approval: 'auto' },
      { id: 'read', run: 'cat note; pwd', cwd: 'out', approval: 'auto' },
    ];
    const { planId, workflowId } = await submitAuto({ name: 'docker-plan', steps });
    await stack.client.workflow.getHandle(workflowId).result();
    const [write, read] = (await planView(stack.client, planId)).steps;
    expect(write?.result?.backend).toBe('docker');
    expect(write?.result?.outputTail).toMatch(/^1000\r?$/m);
    expect(read?.result?.outputTail).toContain('from-step-one');
    expect(read?.result?.outputTail).toContain('/workspace/out');
    // The plan ended: no container of it is left, its volume (the plan's files) is kept.
    expect(await containersOf([planId])).toEqual([]);
    const volume = await promisify(execFile)('docker', [
      'volume',
      'inspect',
      '--format',
      '{{.Name}}',
      workspaceVolumeName(planId),
    ]);
    expect(volume.stdout.trim()).toBe(workspaceVolumeName(planId));
  });

  it('runs parallel steps of a plan each in a container of its own, at the same time, over the same volume', async () => {
    const both =
      'echo $(hostname) > "$SIDE"; while [ ! -e left ] || [ ! -e right ]; do sleep 0.1; done; cat left right';
    const { planId, workflowId } = await submitAuto({
      name: 'docker-parallel',
      steps: [
        {
          parallel: [
            { id: 'left', run: both, env: { SIDE: 'left' }, approval: 'auto', timeout: '30s' },
            { id: 'right', run: both, env: { SIDE: 'right' }, approval: 'auto', timeout: '30s' },
          ],
        },
      ],
    });
    await stack.client.workflow.getHandle(workflowId).result();
    const [left, right] = (await planView(stack.client, planId)).steps;
    const hosts = (text = '') => text.trim().split(/\r?\n/);
    expect(left?.status).toBe('succeeded');
    expect(hosts(left?.result?.outputTail)).toEqual(hosts(right?.result?.outputTail));
    const [leftHost, rightHost] = hosts(left?.result?.outputTail);
    expect(leftHost).toMatch(/^[0-9a-f]{12}$/);
    expect(leftHost).not.toBe(rightHost);
    expect(await containersOf([planId])).toEqual([]);
  });

  it("keeps a step's container hardened while it runs, with the step's environment, and removes it after", async () => {
    const plan = {
      name: 'docker-live',
      steps: [
        { id: 'first', run: 'true', approval: 'auto' },
        { id: 'live', run: 'sleep 60', env: { STEP_ONLY: 'live-value' }, approval: 'auto' },
      ],
    };
    const { planId } = await submitAuto(plan);
    const container = await waitUntil(
      // Created by the executor, then started by its runner: wait for the second.
      async () =>
        (await containersOf([planId])).find((c) => c.Labels[LABELS.step] === 'live' && c.State === 'running'),
      'the step container to run',
    );
    // The first step's container went once its result was kept.
    expect((await containersOf([planId])).map((c) => c.Labels[LABELS.step])).toEqual(['live']);
    const info = await broker.inspect(container.Id);
    expect(info.State.Running).toBe(true);
    expect(info.Config.User).toBe('1000:1000');
    expect(info.Config.Tty).toBe(true);
    expect(info.Config.Env).toContain('STEP_ONLY=live-value');
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.PidsLimit).toBe(256);
    expect(info.HostConfig.Memory).toBe(512 * 1024 ** 2);
    expect(info.HostConfig.Tmpfs).toEqual({ '/tmp': 'rw,nosuid,nodev,size=64m' });
    expect(info.HostConfig.Mounts?.map((m) => m.Source)).toEqual([workspaceVolumeName(planId)]);
    await cancelPlan(stack.client, planId);
    await waitForView(stack.client, planId, (v) => v.status === 'cancelled');
    // A cancelled plan leaves nothing running either.
    await waitUntil(
      async () => ((await containersOf([planId])).length === 0 ? true : undefined),
      "the cancelled plan's containers to go",
      10_000,
    );
  });

  it('gives a step no network, no capabilities, no Docker socket and a read-only system', async () => {
    const [, port] = stack.config.temporalAddress.split(':');
    const probe = [
      `(exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && echo TEMPORAL:open || echo TEMPORAL:closed`,
      'echo NET:$(ls /sys/class/net | tr "\\n" " ")',
      'grep CapEff /proc/self/status',
      'test -e /var/run/docker.sock && echo SOCKET:present || echo SOCKET:absent',
      'touch /usr/evil 2>/dev/null && echo USR:writable || echo USR:read-only',
    ].join('; ');
    const { planId, workflowId } = await submitAuto({
      name: 'docker-probe',
      steps: [{ id: 'probe', run: `bash -c '${probe}'`, approval: 'auto' }],
    });
    await stack.client.workflow.getHandle(workflowId).result();
    const output = (await planView(stack.client, planId)).steps[0]!.result!.outputTail;
    expect(output).toContain('TEMPORAL:closed');
    expect(output).toMatch(/NET:lo\s*$/m);
    expect(output).toMatch(/CapEff:\s+0000000000000000/);
    expect(output).toContain('SOCKET:absent');
    expect(output).toContain('USR:read-only');
  });
});
