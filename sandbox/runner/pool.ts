/**
 * Warm spare runners: starting Node takes a few hundred milliseconds, so runners are started
 * ahead of time and handed a job the moment a step is approved.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromRunner, RunnerJob } from './protocol.js';

const RUNNER_PATH = fileURLToPath(new URL('./runner.ts', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY_TIMEOUT_MS = 20_000;

interface Spare {
  child: ChildProcess;
  ready: Promise<void>;
}

export interface Launched {
  runnerPid: number;
  startedAtMs: number;
}

export class RunnerPool {
  private spares: Spare[] = [];
  private closed = false;

  constructor(private readonly size = 2) {
    for (let i = 0; i < size; i++) this.spares.push(this.spawnSpare());
  }

  private spawnSpare(): Spare {
    const child = spawn(process.execPath, ['--import', 'tsx', RUNNER_PATH], {
      cwd: PROJECT_ROOT,
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    child.unref();
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('runner did not become ready')), READY_TIMEOUT_MS);
      child.once('message', (message: FromRunner) => {
        clearTimeout(timer);
        if (message.type === 'ready') resolve();
        else reject(new Error(`runner said ${message.type} before ready`));
      });
      child.once('exit', (code) => reject(new Error(`runner exited with ${code} before ready`)));
    });
    ready.catch(() => undefined);
    // The IPC channel must not keep the executor alive on its own.
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
    return { child, ready };
  }

  /** Hands the job to a spare runner and resolves once the command has been spawned. */
  async launch(job: RunnerJob): Promise<Launched> {
    if (this.closed) throw new Error('runner pool is closed');
    let spare = this.spares.shift() ?? this.spawnSpare();
    if (!this.closed) this.spares.push(this.spawnSpare());
    try {
      await spare.ready;
    } catch {
      spare.child.kill('SIGKILL');
      spare = this.spawnSpare();
      await spare.ready;
    }
    const { child } = spare;
    return new Promise<Launched>((resolve, reject) => {
      const onMessage = (message: FromRunner) => {
        if (message.type === 'started') {
          cleanup();
          resolve({ runnerPid: child.pid!, startedAtMs: message.startedAtMs });
        } else if (message.type === 'failed') {
          cleanup();
          resolve({ runnerPid: child.pid!, startedAtMs: Date.now() });
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`runner exited (${code}) before starting the step`));
      };
      const cleanup = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
      child.send({ type: 'job', job });
    });
  }

  close(): void {
    this.closed = true;
    for (const spare of this.spares) spare.child.kill('SIGTERM');
    this.spares = [];
  }
}
