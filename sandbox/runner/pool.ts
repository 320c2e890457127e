/**
 * Warm spare runners: starting Node takes a few hundred milliseconds, so runners are started
 * ahead of time and handed a job the moment a step is approved.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { FromRunner, RunnerJob } from './protocol.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCES = ['runner.ts', 'run-dir.ts', 'protocol.ts'].map((f) => fileURLToPath(new URL(`./${f}`, import.meta.url)));
const READY_TIMEOUT_MS = 20_000;

/**
 * Compiles the runner to one plain JavaScript file (Node starts it in ~0.1 s instead of ~0.4 s
 * through a TypeScript loader). It sits under node_modules so `node-pty` resolves from it.
 */
export async function compiledRunner(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of SOURCES) hash.update(await readFile(file));
  const outfile = `${PROJECT_ROOT}node_modules/.cache/countersign/runner-${hash.digest('hex').slice(0, 12)}.mjs`;
  if (!existsSync(outfile)) {
    await build({ entryPoints: [SOURCES[0]!], outfile: `${outfile}.${process.pid}.tmp.mjs`, bundle: true, platform: 'node', format: 'esm', target: 'node20', external: ['node-pty'], logLevel: 'error' });
    await rename(`${outfile}.${process.pid}.tmp.mjs`, outfile);
  }
  return outfile;
}

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

  private constructor(
    private readonly runnerPath: string,
    size: number,
  ) {
    for (let i = 0; i < size; i++) this.spares.push(this.spawnSpare());
  }

  static async start(size = 2): Promise<RunnerPool> {
    return new RunnerPool(await compiledRunner(), size);
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
