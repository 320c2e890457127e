/**
 * Egress follows the machine (issue 15), from inside egress steps on the real engine:
 * - a network attached after set-up — even while a step runs — is not reachable, whatever its
 *   range, while the internet (behind a gateway) is;
 * - Docker's DNS answers no other plan's container names nor addresses;
 * - public names resolve through the host's resolver, which sits in a blocked range.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../sandbox/docker/container-policy.js';
import type { planView } from '../services/plans.js';
import { cancelPlan, decide, submitPlan } from '../services/plans.js';
import { removeDockerLeftovers } from './support/docker.js';
import { attachNetwork, startOutsideWorld, type OutsideWorld } from './support/outside-world.js';
import { runApproved, stepOf, waitForStep } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

const run = promisify(execFile);
const docker = new Docker();
let stack: TestStack;
let outside: OutsideWorld;
const plans: string[] = [];

beforeAll(async () => {
  stack = await startTestStack('egress', { backend: 'docker' });
  outside = await startOutsideWorld(1);
});
afterAll(async () => {
  await removeDockerLeftovers(plans);
  await outside?.close();
  await stack?.close();
});

/** A line `name open <banner>` or `name closed` for a TCP connection from the step. */
const probe = (name: string, host: string, port: number) =>
  `(timeout 3 bash -c 'exec 3<>/dev/tcp/${host}/${port} && echo "${name} open $(timeout 1 head -n 1 <&3)"' 2>/dev/null || echo "${name} closed")`;

const outputOf = (view: Awaited<ReturnType<typeof planView>>, step: string) =>
  (stepOf(view, step).result?.outputTail ?? '').replace(/\r/g, '');

/** The running container of a plan's step. */
async function stepContainer(planId: string) {
  const [found] = await docker.listContainers({ filters: { label: [`${LABELS.plan}=${planId}`] } });
  return found;
}

describe('egress', () => {
  it('cannot reach a network attached after set-up, nor one attached while its step runs; the internet it can', async () => {
    // Attached after scripts/setup derived the firewall, before the plan.
    const early = await attachNetwork(1);
    let late: OutsideWorld | undefined;
    try {
      const control = await run('bash', [
        '-c',
        `${probe('attached', early.address, early.port)}; ${probe('outside', outside.address, outside.port)}`,
      ]);
      expect(control.stdout).toBe('attached open attached\noutside open outside\n');

      const { planId } = await submitPlan(
        stack.client,
        {
          name: 'egress-late-network',
          egress: true,
          steps: [
            {
              id: 'probe',
              // Probes the network attached before it, then waits for the test's word (a file in
              // the workspace) that another network was attached while it runs, and probes again.
              run: [
                probe('outside', outside.address, outside.port),
                probe('attached-before', early.address, early.port),
                'for i in $(seq 200); do [ -e go ] && break; sleep 0.1; done',
                probe('attached-while-running', '198.18.2.1', 8080),
                probe('outside-again', outside.address, outside.port),
              ].join('\n'),
              timeout: '2m',
            },
          ],
        },
        { proposer: 'test' },
      );
      plans.push(planId);
      await waitForStep(stack.client, planId, 'probe', 'awaiting_approval');
      await decide(stack.client, stack.root, planId, 'probe', { decision: 'approve' });
      await waitForStep(stack.client, planId, 'probe', 'running');
      late = await attachNetwork(2);
      // The host reaches it: the step's "closed" is the firewall's doing.
      expect((await run('bash', ['-c', probe('attached', late.address, late.port)])).stdout).toBe(
        'attached open attached\n',
      );
      await sleep(1_500); // the executor follows route changes within a moment
      await writeFile(join(stack.paths.workspaces, planId, 'go'), '');
      const view = await waitForStep(stack.client, planId, 'probe', 'succeeded', 60_000);
      const output = outputOf(view, 'probe');
      expect(output).toContain('outside open outside');
      expect(output).toContain('attached-before closed');
      expect(output).toContain('attached-while-running closed');
      expect(output).toContain('outside-again open outside');
    } finally {
      await early.close();
      await late?.close();
    }
  });

  it("gets no DNS answer for another egress plan's containers, by name or address; its own it resolves", async () => {
    const other = await submitPlan(
      stack.client,
      { name: 'egress-neighbour', egress: true, steps: [{ id: 'wait', run: 'sleep 60', timeout: '2m' }] },
      { proposer: 'test' },
    );
    plans.push(other.planId);
    await waitForStep(stack.client, other.planId, 'wait', 'awaiting_approval');
    await decide(stack.client, stack.root, other.planId, 'wait', { decision: 'approve' });
    await waitForStep(stack.client, other.planId, 'wait', 'running');
    let neighbour = await stepContainer(other.planId);
    for (let i = 0; i < 50 && neighbour?.State !== 'running'; i++) {
      await sleep(100);
      neighbour = await stepContainer(other.planId);
    }
    expect(neighbour?.State).toBe('running');
    const name = neighbour!.Names[0]!.replace(/^\//, '');
    const address = Object.values(neighbour!.NetworkSettings.Networks)[0]!.IPAddress;
    expect(name).toContain(other.planId);

    try {
      const view = await runApproved(
        stack.client,
        stack.root,
        {
          name: 'egress-dns',
          egress: true,
          keepWorkspace: false,
          steps: [
            {
              id: 'lookup',
              run: [
                `getent hosts ${name} && echo by-name-answered || echo by-name-none`,
                `getent hosts ${address} && echo by-address-answered || echo by-address-none`,
                'getent hosts "$(hostname)" >/dev/null && echo own-answered || echo own-none',
              ].join('\n'),
            },
          ],
        },
        plans,
      );
      const output = outputOf(view, 'lookup');
      expect(output).toContain('by-name-none');
      expect(output).toContain('by-address-none');
      expect(output).toContain('own-answered');
      expect(output).not.toContain(other.planId);
      // The plan's own network went with the plan; the neighbour's stays while it runs.
      const networksOf = (plan: string) =>
        docker.listNetworks({ filters: { label: [`${LABELS.plan}=${plan}`] } });
      expect(await networksOf(plans.at(-1)!)).toEqual([]);
      expect(await networksOf(other.planId)).toHaveLength(1);
    } finally {
      await cancelPlan(stack.client, other.planId);
    }
  });

  it("resolves public names through this host's resolver, though the resolver sits in a blocked range", async () => {
    const name = 'registry.npmjs.org';
    // The control: this host resolves it (the registry is reachable from this machine).
    const onHost = await run('getent', ['hosts', name]);
    const view = await runApproved(
      stack.client,
      stack.root,
      {
        name: 'egress-resolve',
        egress: true,
        keepWorkspace: false,
        steps: [{ id: 'resolve', run: `getent hosts ${name} || echo unresolved` }],
      },
      plans,
    );
    expect(outputOf(view, 'resolve')).toContain(onHost.stdout.trim().split(/\s+/)[0]!);
  });
});
