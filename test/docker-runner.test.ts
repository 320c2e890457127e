/**
 * The runner with the Docker backend's step containers, without a stack: the end of a step's
 * output survives both terminals it crosses (the container's and the runner's) on a busy machine,
 * and the Docker client the runner starts is pointed at the broker's engine from a private folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxBackend } from '../sandbox/backend.js';
import { DockerBroker } from '../sandbox/docker/broker.js';
import { createDockerBackend, WORKSPACE_IMAGE } from '../sandbox/docker/docker-backend.js';
import { RunnerPool } from '../sandbox/runner/pool.js';
import { RunDir, type RunFinished } from '../sandbox/runner/run-dir.js';

const WORKSPACE = 'docker-runner-test';
let root: string;
let broker: DockerBroker;
let backend: SandboxBackend;
let pool: RunnerPool;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'countersign-docker-runner-'));
  broker = await DockerBroker.connect(
    [WORKSPACE_IMAGE],
    { info: () => undefined },
    { scope: 'docker-runner-test' },
  );
  backend = createDockerBackend({ broker, clientDir: join(root, 'docker-client') });
  pool = await RunnerPool.start({ size: 3 });
});
afterAll(async () => {
  pool?.close();
  await backend?.releaseWorkspace(WORKSPACE, { removeFiles: true });
  await rm(root, { recursive: true, force: true });
});

let runs = 0;
async function runStep(command: string): Promise<{ run: RunDir; finished: RunFinished }> {
  const stepPath = `step-${runs++}`;
  const run = new RunDir(root, { workflowId: WORKSPACE, stepPath, digest: 'd' });
  await run.claim();
  const execution = { workspaceId: WORKSPACE, stepPath, runKey: run.key, egress: false };
  const workspace = await backend.prepareWorkspace(WORKSPACE, '.', { egress: false });
  const argv = await backend.argvFor({
    workspace,
    cwd: '.',
    env: {},
    run: command,
    timeoutMs: 60_000,
    execution,
  });
  await pool.launch({ runDir: run.dir, ...argv, maxTranscriptBytes: 1024 * 1024, timeoutMs: 60_000 });
  for (;;) {
    const state = await run.state();
    if (state.phase === 'finished') {
      await backend.releaseStep!(execution);
      return { run, finished: state.finished };
    }
    await sleep(50);
  }
}

describe('the runner with step containers', () => {
  it('keeps the end of a flood of output from a step container even when the machine is busy', async () => {
    const burners: ChildProcess[] = [0, 1, 2].map(() => spawn('/bin/sh', ['-c', 'while :; do :; done']));
    try {
      const results = [];
      for (let round = 0; round < 4; round++)
        results.push(
          ...(await Promise.all(
            [0, 1, 2].map(() => runStep('yes countersign | head -c 3000000; echo; echo tail-marker; exit 3')),
          )),
        );
      for (const { run, finished } of results) {
        expect(finished.exitCode).toBe(3);
        expect(finished.truncated).toBe(true);
        expect((await run.tail(64)).text).toContain('tail-marker');
      }
    } finally {
      for (const burner of burners) burner.kill('SIGKILL');
    }
  });

  it("points the Docker client at the broker's engine, configured from a folder of the executor's own", async () => {
    const run = new RunDir(root, { workflowId: WORKSPACE, stepPath: 'argv', digest: 'd' });
    const execution = { workspaceId: WORKSPACE, stepPath: 'argv', runKey: run.key, egress: false };
    const argv = await backend.argvFor({
      workspace: 'countersign-ws-docker-runner-test',
      cwd: '.',
      env: {},
      run: 'true',
      timeoutMs: 1_000,
      execution,
    });
    try {
      const dir = join(root, 'docker-client');
      expect(argv.env).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, DOCKER_CONFIG: dir });
      expect(argv.args.slice(0, 2)).toEqual(['-H', 'unix:///var/run/docker.sock']);
      expect(argv.stop?.env).toEqual(argv.env);
      const info = await stat(dir);
      expect(info.mode & 0o777).toBe(0o700);
    } finally {
      await backend.releaseStep!(execution);
    }
    expect(await broker.stepContainer(run.key)).toBeUndefined();
  });

  it('refuses a client folder that is a link (another user could have made it), before any container is made', async () => {
    await mkdir(join(root, 'elsewhere'));
    await symlink(join(root, 'elsewhere'), join(root, 'linked-client'));
    const linked = createDockerBackend({ broker, clientDir: join(root, 'linked-client') });
    const run = new RunDir(root, { workflowId: WORKSPACE, stepPath: 'linked', digest: 'd' });
    const execution = { workspaceId: WORKSPACE, stepPath: 'linked', runKey: run.key, egress: false };
    await expect(
      linked.argvFor({
        workspace: 'countersign-ws-docker-runner-test',
        cwd: '.',
        env: {},
        run: 'true',
        timeoutMs: 1_000,
        execution,
      }),
    ).rejects.toThrow(/is not a folder of this user's \(a link, or made by someone else\)/);
    expect(await broker.stepContainer(run.key)).toBeUndefined();
  });
});
