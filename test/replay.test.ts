/**
 * Determinism: the workflows bundle (no Node built-ins sneak in), and every recorded history
 * (one per workflow shape, test/fixtures/histories) replays against today's workflow code.
 * Re-record after a deliberate, versioned change: npm run record-histories
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { WORKFLOWS_ENTRY } from '../workers/bundle.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/histories/', import.meta.url));
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };
const fixtures = (await readdir(FIXTURES)).filter((f) => f.endsWith('.json')).sort();
let code: string;

/** A recorded fixture: the workflow id (children derive theirs from it) and the history as plain JSON. */
async function fixture(file: string): Promise<{ workflowId: string; history: unknown }> {
  return JSON.parse(await readFile(`${FIXTURES}${file}`, 'utf8')) as { workflowId: string; history: unknown };
}

beforeAll(async () => {
  // The drift test provokes a nondeterminism warning from the core on purpose; keep the output clean.
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
  });
  ({ code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_ENTRY, logger: quiet }));
});

describe('workflow determinism', () => {
  it('bundles the workflows for the Temporal sandbox', () => {
    expect(code).toContain('planWorkflow');
    expect(code).toContain('deviceRegistryWorkflow');
    expect(fixtures.length).toBeGreaterThanOrEqual(9);
  });

  it.each(fixtures)('replays the recorded history %s', async (file) => {
    const { workflowId, history } = await fixture(file);
    await Worker.runReplayHistory({ workflowBundle: { code } }, history, workflowId);
  });

  it('catches a workflow that drifted from its recorded histories', async () => {
    const drifted = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./replay/drifted-workflows.ts', import.meta.url)),
      logger: quiet,
    });
    const { workflowId, history } = await fixture('sequence-approved.json');
    await expect(Worker.runReplayHistory({ workflowBundle: drifted }, history, workflowId)).rejects.toThrow(
      /[Nn]ondeterminism/,
    );
  });
});
