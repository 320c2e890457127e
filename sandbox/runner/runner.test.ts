/**
 * The runner on its own, with real processes and a real PTY: what a step wrote must all be kept,
 * its status must come back, and its time limit must hold even against a step that ignores
 * SIGTERM. No jail here: the runner's behaviour does not depend on it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerPool } from './pool.js';
import { isAlive, RunDir, type RunFinished } from './run-dir.js';

let pool: RunnerPool;
let root: string;
beforeAll(async () => {
  pool = await RunnerPool.start({ size: 2 });
  root = await mkdtemp(join(tmpdir(), 'countersign-runner-'));
});
afterAll(async () => {
  pool?.close();
  await rm(root, { recursive: true, force: true });
});

let runs = 0;
async function runStep(
  command: string,
  timeoutMs = 60_000,
  stop?: string,
): Promise<{ run: RunDir; finished: RunFinished }> {
  const run = new RunDir(root, { workflowId: 'runner-test', stepPath: `step-${runs++}`, digest: 'd' });
  await run.claim();
  await pool.launch({
    runDir: run.dir,
    file: '/bin/sh',
    args: ['-c', command],
    env: { PATH: '/usr/bin:/bin' },
    maxTranscriptBytes: 1024 * 1024,
    timeoutMs,
    ...(stop ? { stop: { file: '/bin/sh', args: ['-c', stop], env: { PATH: '/usr/bin:/bin' } } } : {}),
  });
  for (;;) {
    const state = await run.state();
    if (state.phase === 'finished') return { run, finished: state.finished };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the runner', () => {
  it('keeps the end of a flood of output even when the machine is busy', async () => {
    // Before the session holder, 6 of 20 such runs lost their last lines under this load.
    const burners: ChildProcess[] = [0, 1, 2].map(() => spawn('/bin/sh', ['-c', 'while :; do :; done']));
    try {
      const results = [];
      for (let round = 0; round < 4; round++) {
        results.push(
          ...(await Promise.all(
            [0, 1, 2].map(() => runStep('yes countersign | head -c 3000000; echo; echo tail-marker')),
          )),
        );
      }
      for (const { run, finished } of results) {
        expect(finished.exitCode).toBe(0);
        expect(finished.truncated).toBe(true);
        expect((await run.tail(64)).text).toContain('tail-marker');
      }
    } finally {
      for (const burner of burners) burner.kill('SIGKILL');
    }
  });

  it('returns the step status and hands the step a terminal', async () => {
    const { run, finished } = await runStep('test -t 0 && test -t 1 && echo has-a-tty; exit 3');
    expect(finished).toMatchObject({ exitCode: 3, signal: null, timedOut: false });
    expect(await readFile(run.path('transcript.log'), 'utf8')).toContain('has-a-tty');
  });

  it('stops a step at its time limit even when the step ignores SIGTERM, and leaves nothing behind', async () => {
    const { run, finished } = await runStep(
      `trap '' TERM; sleep 300 & echo $! > ${root}/sleeper.pid; wait`,
      1_000,
    );
    expect(finished.timedOut).toBe(true);
    expect(finished.exitCode === 0).toBe(false);
    expect(await readFile(run.path('transcript.log'), 'utf8')).toContain('1 s time limit');
    const sleeper = Number(await readFile(join(root, 'sleeper.pid'), 'utf8'));
    await expect.poll(() => isAlive(sleeper), { timeout: 5_000 }).toBe(false);
  });

  it('with a stop command: stops the step with it, not a signal, and writes the result only once it has finished', async () => {
    // The command stands for a container's client: deaf to signals, it ends when the stop command ends it.
    const { run, finished } = await runStep(
      `echo $$ > ${root}/deaf.pid; trap '' TERM HUP; while :; do sleep 0.1; done`,
      1_000,
      `sleep 0.5; date +%s%3N >> ${root}/stopped-at; kill -KILL $(cat ${root}/deaf.pid)`,
    );
    expect(finished.timedOut).toBe(true);
    expect(await readFile(run.path('transcript.log'), 'utf8')).toContain('1 s time limit');
    const stops = (await readFile(join(root, 'stopped-at'), 'utf8')).trim().split('\n').map(Number);
    expect(stops).toHaveLength(1); // run at the limit, and not again once it had succeeded
    expect(finished.finishedAtMs).toBeGreaterThanOrEqual(stops[0]!);
  });

  it('with a stop command: runs it once after the command ended by itself, before the result', async () => {
    const { finished } = await runStep('echo done', 60_000, `sleep 0.3; date +%s%3N >> ${root}/after-end`);
    expect(finished).toMatchObject({ exitCode: 0, timedOut: false });
    const stops = (await readFile(join(root, 'after-end'), 'utf8')).trim().split('\n').map(Number);
    expect(stops).toHaveLength(1);
    expect(finished.finishedAtMs).toBeGreaterThanOrEqual(stops[0]!);
  });
});
