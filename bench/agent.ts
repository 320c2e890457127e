/**
 * Agent (MCP server) benchmark, one run on this machine, against a real Temporal dev server, the
 * real worker processes and the real API process (each started the way `countersign up` does):
 * the overhead of proposing and awaiting a plan through Countersign's MCP server.
 *   MCP: `propose_plan` + `wait_for_plan`, called with the SDK's real `Client` over streamable
 *        HTTP (`POST /mcp`, bearer agent token), timed end to end as a pair, for a plan of one
 *        `true` step (jail) that runs on a standing approval the root device signed for the
 *        agent's plans. `propose_plan` may already return the finished plan (it waits for the
 *        first gate or the end, up to 3s); `wait_for_plan` then answers at once.
 *   baseline, same run: the same plan through `submitPlan` (proposed by the root device, on its
 *        own grant) and `handle.result()` (the executor path without MCP).
 * Samples alternate MCP / baseline, so drift of the machine weighs on both alike.
 * Knob: BENCH_AGENT_PLANS (50). `POST /mcp` allows 300 requests a minute: the bench paces itself
 * between samples (never inside one) to stay under it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { issueAgentToken } from '../services/agents.js';
import type { WorkerProcess } from '../test/support/processes.js';
import { autoPlan, grantRun, startBenchStack, submitAuto, warmup, type BenchStack } from './harness.js';
import { startApiProcess } from './http.js';
import { line, summary } from './stats.js';

const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const PLANS = knob('BENCH_AGENT_PLANS', 50);
const WARMUP_PAIRS = 3;
/** Requests per minute the bench allows itself on `POST /mcp` (the route allows 300). */
const MCP_REQUESTS_PER_MINUTE = 240;

interface Report {
  planId: string;
  status: string;
  done: boolean;
  awaitingApproval: string[];
}

/** Keeps the bench's own `POST /mcp` requests under the route's rate limit; waits outside timing. */
class Pacer {
  private readonly sent: number[] = [];
  async reserve(requests: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      while (this.sent.length && this.sent[0]! <= now - 60_000) this.sent.shift();
      if (this.sent.length + requests <= MCP_REQUESTS_PER_MINUTE) {
        for (let i = 0; i < requests; i++) this.sent.push(now);
        return;
      }
      await sleep(this.sent[0]! + 60_000 - now + 5);
    }
  }
}

function structured(result: Awaited<ReturnType<McpClient['callTool']>>, tool: string): Report {
  if (result.isError) throw new Error(`${tool} failed: ${JSON.stringify(result.content)}`);
  return result.structuredContent as unknown as Report;
}

interface PairSample {
  totalMs: number;
  proposeMs: number;
  waitMs: number;
  doneAtPropose: boolean;
  /** Steps `propose_plan` said await approval (an auto-approved step may show so for a moment). */
  awaitingAtPropose: number;
}

/** `propose_plan` + `wait_for_plan` through the MCP client, end to end. */
async function mcpPair(mcp: McpClient, name: string): Promise<PairSample> {
  const plan = autoPlan(name, 'true');
  const t0 = performance.now();
  const proposed = structured(
    await mcp.callTool({ name: 'propose_plan', arguments: { plan } }),
    'propose_plan',
  );
  const t1 = performance.now();
  const waited = structured(
    await mcp.callTool({
      name: 'wait_for_plan',
      arguments: { planId: proposed.planId, timeoutSeconds: 120 },
    }),
    'wait_for_plan',
  );
  const t2 = performance.now();
  if (waited.status !== 'succeeded') throw new Error(`plan ${waited.planId} ended ${waited.status}`);
  return {
    totalMs: t2 - t0,
    proposeMs: t1 - t0,
    waitMs: t2 - t1,
    doneAtPropose: proposed.done,
    awaitingAtPropose: proposed.awaitingApproval.length,
  };
}

/** The same plan, submitted and awaited straight through Temporal. */
async function directPair(stack: BenchStack, name: string): Promise<number> {
  const t0 = performance.now();
  const { workflowId } = await submitAuto(stack, autoPlan(name, 'true'));
  await stack.client.workflow.getHandle(workflowId).result();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  console.log(`Countersign agent (MCP server) benchmark (${new Date().toISOString()})`);
  const stack = await startBenchStack('jail');
  let api: WorkerProcess | undefined;
  let mcp: McpClient | undefined;
  try {
    const started = await startApiProcess(stack);
    api = started.api;
    await warmup(stack);
    const { agentId, token } = await issueAgentToken(stack.client, stack.root, 'bench agent');
    // The agent's `true` steps run on a standing approval for its plans, as the direct ones do on the root's.
    await grantRun(stack, 'true', { agent: agentId });
    const pacer = new Pacer();
    mcp = new McpClient({ name: 'countersign-bench', version: '0.1.0' });
    // initialize + notifications/initialized are POSTs; the optional GET stream is refused (405).
    await pacer.reserve(2);
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(`${started.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    for (let i = 0; i < WARMUP_PAIRS; i++) {
      await pacer.reserve(2);
      await mcpPair(mcp, 'bench-agent-warmup');
    }

    const viaMcp: PairSample[] = [];
    const direct: number[] = [];
    for (let i = 0; i < PLANS; i++) {
      await pacer.reserve(2);
      viaMcp.push(await mcpPair(mcp, 'bench-agent'));
      direct.push(await directPair(stack, 'bench-agent-direct'));
    }

    const total = viaMcp.map((s) => s.totalMs);
    console.log(`\n${PLANS} plans of one auto-approved \`true\` step (jail), MCP and baseline alternating`);
    console.log(line('  MCP: propose_plan + wait_for_plan (HTTP)', total));
    console.log(
      line(
        '    of which propose_plan',
        viaMcp.map((s) => s.proposeMs),
      ),
    );
    console.log(
      line(
        '    of which wait_for_plan',
        viaMcp.map((s) => s.waitMs),
      ),
    );
    console.log(
      `    propose_plan returned the finished plan in ${viaMcp.filter((s) => s.doneAtPropose).length}/${PLANS}`,
    );
    console.log(
      `    propose_plan reported a step awaiting approval in ${viaMcp.filter((s) => s.awaitingAtPropose > 0).length}/${PLANS}`,
    );
    console.log(line('  baseline: submitPlan + handle.result()', direct));
    const overhead = summary(total).p50 - summary(direct).p50;
    const overhead99 = summary(total).p99 - summary(direct).p99;
    console.log(`  MCP overhead: p50 ${overhead.toFixed(1)}ms (p99 difference ${overhead99.toFixed(1)}ms)`);
  } finally {
    await mcp?.close().catch(() => undefined);
    await api?.kill('SIGTERM');
    await stack.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
