/**
 * The API's boundary, checked on what its process actually loads: esbuild follows every import
 * of api/server.ts. It talks to Temporal and nothing else: no Docker client, no PTY, no child
 * processes, no sandbox or executor code, no activity that runs a step.
 */
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { PROJECT_ROOT } from '../workers/config.js';

describe('the API process', () => {
  it('loads no Docker client, no PTY, no process spawning and no sandbox or executor code', async () => {
    const result = await build({
      entryPoints: [resolve(PROJECT_ROOT, 'api/server.ts')],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      metafile: true,
      logLevel: 'silent',
      outdir: '/tmp/countersign-api-boundary',
    });
    const output = Object.values(result.metafile.outputs)[0]!;
    const packages = output.imports.filter((i) => i.external).map((i) => i.path);
    const sources = Object.keys(result.metafile.inputs);
    expect(packages).toContain('@temporalio/client');
    for (const banned of [
      'dockerode',
      'node-pty',
      'node:child_process',
      'child_process',
      '@temporalio/worker',
    ])
      expect(packages, banned).not.toContain(banned);
    expect(sources.filter((s) => /^(sandbox|activities)\//.test(s) || s === 'workers/executor.ts')).toEqual(
      [],
    );
  });
});
