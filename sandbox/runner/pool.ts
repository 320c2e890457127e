/**
 * Warm spare runners: starting Node takes ~0.1 s, so runners are started ahead of time and
 * handed a job the moment a step is approved. Spares cost ~40 MiB each, so they are retired
 * when no step has started for a while; the next step after that starts one cold.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { compiledEntry } from '../../workers/compile.js';
import { PROJECT_ROOT } from '../../workers/project-root.js';
import type { FromRunner, RunnerJob } from './protocol.js';

const READY_TIMEOUT_MS = 20_000;

interface Spare {
  child: ChildProcess;
  ready: Promise<void>;
}

export interface Launched {
  runnerPid: number;
  startedAtMs: number;
}

export interface RunnerPoolOptions {
  /** Spares kept while steps are starting. */
  size?: number;
  /** Spares are retired after this long without a launch. */
  idleRetireMs?: number;
}

export class RunnerPool {
  private spares: Spare[] = [];
  private closed = false;
  private retireTimer?: NodeJS.Timeout;
  private readonly size: number;
  private readonly idleRetireMs: number;

  private constructor(
    private readonly runnerPath: string,
    options: RunnerPoolOptions,
  ) {
    this.size = options.size ?? 1;
    this.idleRetireMs = options.idleRetireMs ?? 30_000;
    this.refill();
  }

  static async start(options: RunnerPoolOptions = {}): Promise<RunnerPool> {
    return new RunnerPool(await compiledEntry('sandbox/runner/runner.ts'), options);
  }

  private refill(): void {
    while (!this.closed && this.spares.length < this.size) this.spares.push(this.spawnSpare());
    clearTimeout(this.retireTimer);
    this.retireTimer = setTimeout(() => this.retire(), this.idleRetireMs);
    this.retireTimer.unref();
  }

  private retire(): void {
    for (const spare of this.spares.splice(0)) spare.child.kill('SIGTERM');
  }

  private spawnSpare(): Spare {
    const child = spawn(process.execPath, [this.runnerPath], {
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
    this.refill();
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
    clearTimeout(this.retireTimer);
    this.retire();
  }
}
