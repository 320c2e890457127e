/**
 * MCP steps with the real catalog servers (filesystem, everything, memory) in real containers,
 * through the whole product: plan → catalog pin → signed approval → executor → a fresh server
 * container per call → result in the plan's history. Every server container must be gone after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planTimeline } from '../services/history/timeline.js';
import { decide, planView, submitPlan } from '../services/plans.js';
import { removeDockerLeftovers } from './support/docker.js';
import { expectRoundTrip, FILESYSTEM_ROUND_TRIP, mcpContainers } from './support/mcp.js';
import { runApproved as runPlanApproved, stepOf, waitForView } from './support/plans.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
const plans: string[] = [];

beforeAll(async () => {
  stack = await startTestStack('mcp-docker', { backend: 'docker' });
}, 60_000);
afterAll(async () => {
  await removeDockerLeftovers(plans);
  await stack?.close();
});

const runApproved = (plan: Record<string, unknown>) => runPlanApproved(stack.client, stack.root, plan, plans);

const step = stepOf;

describe('MCP steps in Docker', () => {
  it("reads and writes files in the workspace, sees a shell step's files, and the server refuses paths outside it", async () => {
    expectRoundTrip(await runApproved(FILESYSTEM_ROUND_TRIP), 'docker');
  });

  it('shows approvers the pinned tool description and binds the approval to image and tool hash', async () => {
    const { planId, workflowId } = await submitPlan(
      stack.client,
      {
        name: 'shown',
        steps: [{ id: 'sum', mcp: { server: 'everything', tool: 'get-sum', arguments: { a: 2, b: 3.5 } } }],
      },
      { proposer: 'test' },
    );
    plans.push(planId);
    const waiting = await waitForView(
      stack.client,
      planId,
      (v) => step(v, 'sum').status === 'awaiting_approval',
    );
    const pin = step(waiting, 'sum').mcpPin!;
    expect(pin.description).toBe('Returns the sum of two numbers');
    expect(pin.image).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(step(waiting, 'sum').summary).toBe('everything/get-sum {"a":2,"b":3.5}');
    await decide(stack.client, stack.root, planId, 'sum', { decision: 'approve' });
    await stack.client.workflow.getHandle(workflowId).result();
    const done = await planView(stack.client, planId);
    expect(step(done, 'sum').result!.outputTail).toContain('5.5');
    const timeline = await planTimeline(stack.client, planId);
    const pinned = timeline.entries.find((e) => e.kind === 'tool_pinned');
    expect(pinned?.text).toContain('says: "Returns the sum of two numbers"');
    expect(timeline.steps[0]!.verified).toBe(true);
  });

  it('runs everything tools: structured content, a large result cut with a marker, and a tool error', async () => {
    const big = 'x'.repeat(60_000);
    const view = await runApproved({
      name: 'everything',
      steps: [
        {
          parallel: [
            {
              id: 'structured',
              mcp: {
                server: 'everything',
                tool: 'get-structured-content',
                arguments: { location: 'Chicago' },
              },
            },
            { id: 'large', mcp: { server: 'everything', tool: 'echo', arguments: { message: big } } },
            {
              id: 'offline',
              mcp: {
                server: 'everything',
                tool: 'gzip-file-as-resource',
                arguments: { data: 'https://example.com/', outputType: 'resource' },
              },
            },
          ],
          failFast: false,
        },
      ],
    });
    const structured = step(view, 'structured').result!;
    expect(step(view, 'structured').status).toBe('succeeded');
    expect(structured.mcp!.structuredContent).toMatchObject({ temperature: expect.any(Number) });
    const large = step(view, 'large').result!;
    expect(large.truncated).toBe(true);
    expect(large.outputBytes).toBeGreaterThan(60_000);
    expect(large.outputTail).toMatch(
      /…\[truncated by Countersign: the result was 59 KiB; the first 32 KiB of its text are kept\]$/,
    );
    expect(Buffer.byteLength(large.outputTail)).toBeLessThan(33 * 1024);
    // The server has no network: fetching fails inside the tool, which reports the error.
    expect(step(view, 'offline').status).toBe('failed');
    expect(step(view, 'offline').result!.mcp!.isError).toBe(true);
  });

  it("keeps the memory server's knowledge graph in the plan's workspace from one call to the next", async () => {
    const view = await runApproved({
      name: 'memory',
      steps: [
        {
          id: 'remember',
          mcp: {
            server: 'memory',
            tool: 'create_entities',
            arguments: {
              entities: [
                { name: 'Countersign', entityType: 'project', observations: ['every step is signed'] },
              ],
            },
          },
        },
        {
          id: 'recall',
          mcp: { server: 'memory', tool: 'search_nodes', arguments: { query: 'Countersign' } },
        },
      ],
    });
    expect(step(view, 'remember').error).toBeUndefined();
    expect(step(view, 'recall').status).toBe('succeeded');
    expect(step(view, 'recall').result!.outputTail).toContain('every step is signed');
  });

  it('leaves no server container behind', async () => {
    expect(await mcpContainers(stack.config)).toEqual([]);
  });
});
