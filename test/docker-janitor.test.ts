/**
 * The workspace janitor with real parts: a step's container outlives its plan when its executor
 * crashed and the plan was terminated (no end-of-plan release runs), and the janitor removes it
 * on its next round, while the container of a plan that is still open stays. Another
 * installation's container on the same engine is never touched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JANITOR_WORKFLOW_ID } from '../core/names.js';
import { DockerBroker } from '../sandbox/docker/broker.js';
import { WORKSPACE_IMAGE, workspaceVolumeName } from '../sandbox/docker/docker-backend.js';
import { ensureJanitor } from '../workers/control.js';
import { brokerScope } from '../workers/sandbox-choice.js';
import { submitGranted } from './support/grants.js';
import { containersOf, removeDockerLeftovers } from './support/docker.js';
import { waitUntil } from './support/process-stack.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { waitForStep } from './support/plans.js';

let stack: TestStack;
let stranger: DockerBroker;
const plans: string[] = [];
beforeAll(async () => {
  process.env.COUNTERSIGN_JANITOR_INTERVAL_MS = '1000';
  stack = await startTestStack('janitor', { backend: 'docker' });
  stranger = await DockerBroker.connect(
    [WORKSPACE_IMAGE],
    { info: () => undefined },
    { scope: 'someone-else' },
  );
  broker = await DockerBroker.connect(
    [WORKSPACE_IMAGE],
    { info: () => undefined },
    { scope: brokerScope(stack.config) },
  );
});
afterAll(async () => {
  await removeDockerLeftovers([...plans, 'stranger-plan']);
  await stack?.close();
});

let broker: DockerBroker;
let runs = 0;

/**
 * A plan open at its gate, after a first step ran (on an exact grant, no person), with the
 * container of a step whose executor crashed before it could remove it (made here, as the
 * executor makes it).
 */
async function planWithContainer(name: string) {
  const submitted = await submitGranted(stack.client, stack.root, {
    name,
    steps: [
      { id: 'touch', run: 'echo hi', approval: 'auto' },
      { id: 'wait', gate: 'keep the plan open' },
    ],
  });
  plans.push(submitted.planId);
  await waitForStep(stack.client, submitted.planId, 'wait', 'awaiting_approval');
  expect(await containersOf([submitted.planId])).toEqual([]); // the step's own container went
  await broker.createStep({
    image: WORKSPACE_IMAGE,
    owner: { plan: submitted.planId, step: 'crashed' },
    workspaceVolume: workspaceVolumeName(submitted.planId),
    command: ['true'],
    step: { run: `${(runs++).toString(16).padStart(2, '0')}`.repeat(8), env: {} },
  });
  expect(await containersOf([submitted.planId])).toHaveLength(1);
  return submitted;
}

describe('the workspace janitor', () => {
  it("removes the container of a terminated plan, keeps an open plan's and another installation's", async () => {
    await ensureJanitor(stack.client); // already running: the same workflow, nothing new
    const terminated = await planWithContainer('janitor-terminated');
    const open = await planWithContainer('janitor-open');
    const foreign = await stranger.run({ image: WORKSPACE_IMAGE, owner: { plan: 'stranger-plan' } });
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // older than any list taken from now on
    await stack.client.workflow.getHandle(terminated.workflowId).terminate('the test ends it abruptly');
    await waitUntil(
      async () => ((await containersOf([terminated.planId])).length === 0 ? true : undefined),
      "the janitor to remove the terminated plan's container",
      30_000,
    );
    expect(await containersOf([open.planId])).toHaveLength(1);
    expect((await stranger.inspect(foreign.id)).State.Running).toBe(true);
    const janitor = await stack.client.workflow.getHandle(JANITOR_WORKFLOW_ID).describe();
    expect(janitor.status.name).toBe('RUNNING');
  });

  it("removes an MCP server container that outlived its call, even in an open plan, and keeps the plan's workspace", async () => {
    const open = await planWithContainer('janitor-mcp');
    const image = 'countersign/mcp-fixture:latest';
    await broker.admitImage(image, (await broker.currentImageId(image))!);
    // A server its executor could not remove: started, and never disposed of.
    const server = await broker.runAttached({
      image,
      owner: { plan: open.planId, step: 'call', call: 'ab'.repeat(16) },
      command: ['node', '/opt/mcp/server.mjs', 'honest'],
    });
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // Docker counts creation in whole seconds
    expect(await broker.reap(new Set(plans), Date.now())).toEqual([]); // young enough
    expect(await broker.reap(new Set(plans), Date.now(), { mcpMaxAgeMs: 0 })).toEqual([server.id]);
    expect(await containersOf([open.planId])).toHaveLength(1); // the step's container stays
    server.stdin.destroy();
  });
});
