/**
 * MCP call benchmarks, one run: the per-activity lifecycle (server start + initialize +
 * tools/list + call + removal) of `everything/echo`, exactly as `runMcpStep` does it, in Docker
 * (a fresh container per call) and in the bubblewrap jail beside it; then 20 calls at once.
 * A bare `docker create + start + remove` of the same image is the floor the container adds.
 * Knobs: BENCH_MCP_CALLS (100), BENCH_MCP_CONCURRENT (20), BENCH_MCP_SERVER (everything),
 * BENCH_MCP_TOOL (echo).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { McpServerEntry } from '../core/mcp/catalog.js';
import { callPinnedTool } from '../sandbox/mcp/call.js';
import { ensureCatalog } from '../sandbox/mcp/catalog-store.js';
import type { McpLauncher } from '../sandbox/mcp/launcher.js';
import { PROJECT_ROOT } from '../workers/config.js';
import { createSandbox, MCP_CATALOG_TEMPLATE } from '../workers/sandbox-choice.js';
import { line, summary } from './stats.js';

const knob = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const CALLS = knob('BENCH_MCP_CALLS', 100);
const CONCURRENT = knob('BENCH_MCP_CONCURRENT', 20);
const SERVER = process.env.BENCH_MCP_SERVER ?? 'everything';
const TOOL = process.env.BENCH_MCP_TOOL ?? 'echo';
const ARGS = TOOL === 'echo' ? { message: 'hello from the bench' } : {};

interface CallSample {
  totalMs: number;
  startMs: number;
  initializeMs: number;
  listMs: number;
  callMs: number;
  removeMs: number;
}

async function oneCall(launcher: McpLauncher, entry: McpServerEntry): Promise<CallSample> {
  const began = performance.now();
  const server = await launcher.launch({
    entry,
    workspaceId: 'bench-mcp',
    stepPath: 'bench',
    callKey: randomBytes(16).toString('hex'),
  });
  const startMs = performance.now() - began;
  let timings;
  try {
    const outcome = await callPinnedTool(server, { entry, tool: TOOL, arguments: ARGS, timeoutMs: 60_000 });
    if (outcome.isError) throw new Error(`the call failed: ${outcome.text}`);
    timings = outcome.timings;
  } finally {
    const removing = performance.now();
    await server.dispose();
    timings = { ...timings!, removeMs: performance.now() - removing };
  }
  return { totalMs: performance.now() - began, startMs, ...timings };
}

function report(label: string, samples: CallSample[]): void {
  console.log(
    line(
      `${label}: whole call`,
      samples.map((s) => s.totalMs),
    ),
  );
  for (const part of ['startMs', 'initializeMs', 'listMs', 'callMs', 'removeMs'] as const)
    console.log(
      line(
        `  ${part.replace('Ms', '')}`,
        samples.map((s) => s[part]),
      ),
    );
}

async function measure(
  name: 'docker' | 'jail',
  home: string,
): Promise<{ sequential: number[]; wallMs: number }> {
  const config = { home, temporalAddress: '127.0.0.1:7233', namespace: 'default' };
  const sandbox = await createSandbox(name, config);
  const catalog = await ensureCatalog({
    path: join(home, 'catalog.json'),
    template: MCP_CATALOG_TEMPLATE,
    projectRoot: PROJECT_ROOT,
    imageIdOf: sandbox.imageIdOf,
  });
  const entry = catalog.servers.find((s) => s.id === SERVER)!;
  for (let i = 0; i < 3; i++) await oneCall(sandbox.mcp, entry); // warm the page cache
  const samples: CallSample[] = [];
  for (let i = 0; i < CALLS; i++) samples.push(await oneCall(sandbox.mcp, entry));
  report(`${name}, ${CALLS} calls one after another`, samples);
  const began = performance.now();
  const together = await Promise.all(Array.from({ length: CONCURRENT }, () => oneCall(sandbox.mcp, entry)));
  const wallMs = performance.now() - began;
  report(`${name}, ${CONCURRENT} calls at once`, together);
  console.log(
    `${name}: ${CONCURRENT} concurrent calls all done in ${wallMs.toFixed(0)} ms (${((CONCURRENT / wallMs) * 1000).toFixed(1)} calls/s)`,
  );
  return { sequential: samples.map((s) => s.totalMs), wallMs };
}

async function main(): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'countersign-bench-mcp-'));
  console.log(
    `MCP call lifecycle: ${SERVER}/${TOOL}, ${CALLS} sequential + ${CONCURRENT} concurrent per sandbox\n`,
  );
  try {
    const docker = await measure('docker', home);
    console.log();
    const jail = await measure('jail', home);
    const d = summary(docker.sequential);
    const j = summary(jail.sequential);
    console.log('\nsummary (targets: Docker p50 ≤ 600 ms, p99 ≤ 1500 ms, 20 concurrent ≤ 4000 ms)');
    console.log(
      `  docker  p50 ${d.p50.toFixed(0)} ms  p99 ${d.p99.toFixed(0)} ms  ${CONCURRENT} concurrent ${docker.wallMs.toFixed(0)} ms`,
    );
    console.log(
      `  jail    p50 ${j.p50.toFixed(0)} ms  p99 ${j.p99.toFixed(0)} ms  ${CONCURRENT} concurrent ${jail.wallMs.toFixed(0)} ms`,
    );
    console.log(
      `  Docker costs ${(d.p50 - j.p50).toFixed(0)} ms more per call at p50 (container create, start, attach, remove)`,
    );
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

await main();
