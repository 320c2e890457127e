/**
 * Countersign as an MCP server, driven by the SDK's real `Client` over stdio (`countersign mcp
 * serve`, a real process) and over streamable HTTP (the API's `POST /mcp`): propose, a person
 * approves with a device, the agent waits and reads the output; a denial comes back as an answer
 * naming the device and its reason; cancel; an agent token cannot approve by any path; a revoked
 * token is refused; one agent cannot read another's plans; bad input starts nothing.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanReport } from '../agent/report.js';
import { issueAgentToken, revokeAgentToken } from '../services/agents.js';
import { decide, listPlans } from '../services/plans.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { startApi, type ApiUnderTest } from './support/api.js';
import { waitForStep } from './support/plans.js';
import { freePort } from './support/ports.js';
import { startTestStack, type TestStack } from './support/stack.js';

let stack: TestStack;
let api: ApiUnderTest;
let url: string;
let token: string;
let otherToken: string;
const clients: Client[] = [];

async function httpAgent(bearer: string): Promise<Client> {
  const client = new Client({ name: 'test agent', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
    }),
  );
  clients.push(client);
  return client;
}

async function stdioAgent(bearer: string): Promise<Client> {
  const client = new Client({ name: 'test agent', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: join(PROJECT_ROOT, 'bin', 'countersign'),
      args: ['mcp', 'serve'],
      cwd: PROJECT_ROOT,
      env: {
        ...(process.env as Record<string, string>),
        COUNTERSIGN_HOME: stack.config.home,
        TEMPORAL_ADDRESS: stack.config.temporalAddress,
        COUNTERSIGN_TEMPORAL_TLS_DIR: stack.config.temporalTlsDir ?? '',
        TEMPORAL_NAMESPACE: stack.config.namespace,
        COUNTERSIGN_AGENT_TOKEN: bearer,
      },
      stderr: 'pipe',
    }),
  );
  clients.push(client);
  return client;
}

const report = (result: unknown) => {
  const r = result as CallToolResult;
  expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
  return r.structuredContent as unknown as PlanReport;
};
const errorText = (result: unknown) => {
  const r = result as CallToolResult;
  expect(r.isError).toBe(true);
  return (r.content[0] as { text: string }).text;
};

beforeAll(async () => {
  stack = await startTestStack('agent-mcp');
  const port = await freePort();
  api = await startApi(stack, { COUNTERSIGN_API_PORT: String(port) });
  await api.app.listen({ host: '127.0.0.1', port });
  url = `http://127.0.0.1:${port}`;
  token = (await issueAgentToken(stack.client, stack.root, 'coding agent')).token;
  otherToken = (await issueAgentToken(stack.client, stack.root, 'other agent')).token;
});
afterAll(async () => {
  for (const client of clients) await client.close().catch(() => undefined);
  await api?.close();
  await stack?.close();
});

describe.each([
  ['streamable HTTP', httpAgent],
  ['stdio', stdioAgent],
])('an agent over %s', (_transport, connect) => {
  it('lists its tools, each with schemas and honest annotations, and none that approves', async () => {
    const agent = await connect(token);
    const { tools } = await agent.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'call_tool',
      'cancel_plan',
      'list_catalog',
      'plan_status',
      'propose_plan',
      'run_command',
      'wait_for_plan',
    ]);
    for (const tool of tools) {
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type).toBe('object');
    }
    expect(tools.find((t) => t.name === 'plan_status')!.annotations?.readOnlyHint).toBe(true);
    expect(tools.find((t) => t.name === 'run_command')!.annotations?.destructiveHint).toBe(true);
    expect(tools.some((t) => /approve|device|revoke/.test(t.name))).toBe(false);
  });

  it('runs a command once a person approves it, and reads the output and who approved', async () => {
    const agent = await connect(token);
    const proposed = report(
      await agent.callTool({ name: 'run_command', arguments: { command: 'echo agent-was-here' } }),
    );
    expect(proposed.awaitingApproval).toEqual(['command']);
    const progress: string[] = [];
    const waiting = agent.callTool(
      { name: 'wait_for_plan', arguments: { planId: proposed.planId, timeoutSeconds: 60 } },
      undefined,
      { onprogress: (p) => progress.push(p.message ?? ''), timeout: 90_000 },
    );
    // The agent hears the gate first (a progress notification), then the person approves.
    await expect.poll(() => progress.join('\n'), { timeout: 15_000 }).toContain('awaiting_approval');
    await decide(stack.client, stack.root, proposed.planId, 'command', { decision: 'approve' });
    const done = report(await waiting);
    expect(done).toMatchObject({ done: true, status: 'succeeded' });
    expect(done.steps[0]).toMatchObject({ path: 'command', exitCode: 0, approvedBy: ['test phone'] });
    expect(done.steps[0]!.output).toContain('agent-was-here');
    expect(progress.some((m) => m.includes('awaiting_approval'))).toBe(true);
    const history = await stack.client.workflow.getHandle(proposed.workflowId).fetchHistory();
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    expect(Buffer.from(input!).toString()).toContain('"proposer":"agent \\"coding agent\\"');
  });

  it('gets a denial as an answer: who denied, and why', async () => {
    const agent = await connect(token);
    const proposed = report(
      await agent.callTool({ name: 'run_command', arguments: { command: 'git push --force' } }),
    );
    await waitForStep(stack.client, proposed.planId, 'command', 'awaiting_approval');
    await decide(stack.client, stack.root, proposed.planId, 'command', {
      decision: 'deny',
      reason: 'not on main',
    });
    const done = report(
      await agent.callTool({
        name: 'wait_for_plan',
        arguments: { planId: proposed.planId, timeoutSeconds: 30 },
      }),
    );
    expect(done.done).toBe(true);
    expect(done.steps[0]!.denied).toBe('denied by test phone: not on main');
  });

  it('cancels its plan', async () => {
    const agent = await connect(token);
    const proposed = report(
      await agent.callTool({ name: 'run_command', arguments: { command: 'sleep 100' } }),
    );
    expect(
      (await agent.callTool({ name: 'cancel_plan', arguments: { planId: proposed.planId } })).isError,
    ).toBeFalsy();
    const done = report(
      await agent.callTool({
        name: 'wait_for_plan',
        arguments: { planId: proposed.planId, timeoutSeconds: 30 },
      }),
    );
    expect(done.status).toBe('cancelled');
  });

  it("cannot read, wait for or cancel another agent's plan", async () => {
    const mine = report(
      await (await connect(token)).callTool({ name: 'run_command', arguments: { command: 'true' } }),
    );
    const other = await connect(otherToken);
    for (const name of ['plan_status', 'wait_for_plan', 'cancel_plan'])
      expect(
        errorText(await other.callTool({ name, arguments: { planId: mine.planId, timeoutSeconds: 1 } })),
      ).toContain('no such plan among this agent');
    expect(
      (await listPlans(stack.client, { agentId: await agentIdOf(otherToken) })).map((p) => p.workflowId),
    ).not.toContain(mine.workflowId);
  });

  it('answers bad input with a clear tool error and starts nothing', async () => {
    const agent = await connect(token);
    const before = (await listPlans(stack.client, { agentId: await agentIdOf(token), limit: 1000 })).length;
    expect(
      errorText(await agent.callTool({ name: 'propose_plan', arguments: { plan: 'name: x\nsteps: 3' } })),
    ).toContain('steps: expected array');
    expect(
      errorText(
        await agent.callTool({
          name: 'propose_plan',
          arguments: { plan: { name: 'x', steps: [{ id: 'a', rm: '-rf' }] } },
        }),
      ),
    ).toContain('plan is invalid');
    expect(
      errorText(await agent.callTool({ name: 'run_command', arguments: { command: 'x'.repeat(20_000) } })),
    ).toMatch(/command|too_big|16000/i);
    expect(
      errorText(await agent.callTool({ name: 'call_tool', arguments: { server: 'nope', tool: 'x' } })),
    ).toContain('no server "nope" in the catalog');
    expect(
      errorText(
        await agent.callTool({ name: 'call_tool', arguments: { server: 'everything', tool: 'get-env' } }),
      ),
    ).toContain('allows no tool "get-env"');
    expect(errorText(await agent.callTool({ name: 'run_command', arguments: {} }))).toMatch(/command/);
    await expect(agent.callTool({ name: 'approve_step', arguments: {} })).resolves.toMatchObject({
      isError: true,
    });
    const after = (await listPlans(stack.client, { agentId: await agentIdOf(token), limit: 1000 })).length;
    expect(after).toBe(before);
  });
});

async function agentIdOf(bearer: string): Promise<string> {
  return bearer.split('_')[1]!;
}

describe('agent tokens', () => {
  it('cannot approve by any path: no tool, the approvals route refuses a bearer token, and a signature it cannot make', async () => {
    const agent = await httpAgent(token);
    const proposed = report(await agent.callTool({ name: 'run_command', arguments: { command: 'true' } }));
    await waitForStep(stack.client, proposed.planId, 'command', 'awaiting_approval');
    const viaApi = await fetch(`${url}/api/plans/${proposed.workflowId}/approvals`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        envelope: { payloadType: 'x', payload: '', signatures: [{ keyid: 'x', sig: '' }] },
      }),
    });
    expect(viaApi.status).toBe(401);
    for (const path of ['/api/devices/records', '/api/devices/invitations', '/api/plans'])
      expect(
        (await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }))
          .status,
      ).toBe(401);
    expect((await agent.listTools()).tools.some((t) => /approve/.test(t.name))).toBe(false);
    const status = report(
      await agent.callTool({ name: 'plan_status', arguments: { planId: proposed.planId } }),
    );
    expect(status.awaitingApproval).toEqual(['command']);
  });

  it('refuses a revoked token, a forged one, and none at all', async () => {
    const { token: doomed, agentId } = await issueAgentToken(stack.client, stack.root, 'doomed agent');
    await httpAgent(doomed);
    await revokeAgentToken(stack.client, stack.root, agentId, 'leaked in a log');
    await expect(httpAgent(doomed)).rejects.toThrow(/revoked|401/);
    const forged = `${doomed.slice(0, -4)}AAAA`;
    await expect(httpAgent(forged.replace(agentId, token.split('_')[1]!))).rejects.toThrow(
      /unknown agent token|401/,
    );
    const none = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('agent_token_missing');
    await expect(stdioAgent(doomed)).rejects.toThrow();
  });
});

describe('countersign mcp config', () => {
  const run = (...args: string[]) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        join(PROJECT_ROOT, 'bin', 'countersign'),
        args,
        { cwd: PROJECT_ROOT, env: { ...process.env, NO_COLOR: '1' } },
        (error, stdout, stderr) =>
          resolve({ code: (error as { code?: number } | null)?.code ?? 0, out: stdout + stderr }),
      );
    });

  it('prints the snippet for each client, and names the choices for any other', async () => {
    expect((await run('mcp', 'config', 'claude')).out).toContain(
      'claude mcp add countersign --env COUNTERSIGN_AGENT_TOKEN=',
    );
    expect(JSON.parse((await run('mcp', 'config', 'opencode')).out.split('\n\n#')[0]!)).toMatchObject({
      mcp: {
        countersign: { type: 'local', command: [expect.stringContaining('bin/countersign'), 'mcp', 'serve'] },
      },
    });
    expect((await run('mcp', 'config', 'codex')).out).toContain('[mcp_servers.countersign]');
    const other = await run('mcp', 'config', 'vim');
    expect(other.code).toBe(64);
    expect(other.out).toContain('choose one of opencode, claude, codex');
  });
});
