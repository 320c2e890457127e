/**
 * Shell steps on the Docker backend: one hardened workspace container per plan, its named volume
 * shared by the plan's steps, and the step's view of its own box checked from inside.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBroker } from '../sandbox/docker/broker.js';
import { WORKSPACE_IMAGE, workspaceVolumeName } from '../sandbox/docker/docker-backend.js';
import { cancelPlan, planView } from '../services/plans.js';
import { submitGranted } from './support/grants.js';
import { removeDockerLeftovers } from './support/docker.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { waitForStep, waitForView } from './support/plans.js';

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
  it('runs a plan in one workspace container whose volume carries files from step to step', async () => {
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
    // The plan ended: its container is gone, its volume (the plan's files) is kept.
    expect(await broker.findWorkspace(planId)).toBeUndefined();
    const volume = await promisify(execFile)('docker', [
      'volume',
      'inspect',
      '--format',
      '{{.Name}}',
      workspaceVolumeName(planId),
    ]);
    expect(volume.stdout.trim()).toBe(workspaceVolumeName(planId));
  });

  it('keeps the workspace container hardened while the plan runs', async () => {
    const plan = {
      name: 'docker-live',
      steps: [
        { id: 'first', run: 'true', approval: 'auto' },
        { id: 'wait', gate: 'look at the container' },
      ],
    };
    const { planId } = await submitAuto(plan);
    await waitForStep(stack.client, planId, 'wait', 'awaiting_approval');
    const container = await broker.findWorkspace(planId);
    expect(container?.running).toBe(true);
    const info = await broker.inspect(container!.id);
    expect(info.Config.User).toBe('1000:1000');
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.Mounts?.map((m) => m.Source)).toEqual([workspaceVolumeName(planId)]);
    await cancelPlan(stack.client, planId);
    await waitForView(stack.client, planId, (v) => v.status === 'cancelled');
    // A cancelled plan releases its container too.
    for (let i = 0; i < 50 && (await broker.findWorkspace(planId)); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await broker.findWorkspace(planId)).toBeUndefined();
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
