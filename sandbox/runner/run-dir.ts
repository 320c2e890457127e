/**
 * The run directory: the durable record of one step execution on the executor's host.
 * It is what lets a restarted executor re-attach to a step instead of starting it twice.
 *
 *   claim.json      written once (O_EXCL) by the executor that launches the step
 *   launch.json     the runner's pid, written right after the runner took the job
 *   started.json    written by the runner just before it spawns the command
 *   transcript.log  the PTY output, bounded
 *   result.json     exit code, signal, duration; written atomically when the command ends
 *   attaches.log    one line per executor attach (first launch included)
 *   diagnosis.json  what the sandbox said of a failed run, kept before what it made for the run goes
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface RunIdentity {
  workflowId: string;
  /** The plan's first run: a plan started again under a closed plan's id is another plan. */
  runId?: string | undefined;
  stepPath: string;
  digest: string;
}

export interface RunStarted {
  pid: number;
  startedAtMs: number;
}

export interface RunFinished {
  exitCode: number | null;
  signal: string | null;
  /** From the start to the command's end. */
  durationMs: number;
  /** When the result was written: for a step in a container, once the container had stopped. */
  finishedAtMs: number;
  outputBytes: number;
  truncated: boolean;
  /** True when the runner stopped the command at the step's time limit. */
  timedOut?: boolean;
}

export type RunState =
  | { phase: 'new' }
  | { phase: 'claimed'; runnerPid?: number }
  | { phase: 'started'; started: RunStarted; runnerPid?: number }
  | { phase: 'finished'; started: RunStarted; finished: RunFinished };

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    // A zombie or a recycled pid that is not our runner does not count.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('runner');
  } catch {
    return false;
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export class RunDir {
  readonly dir: string;
  /** Names this execution of the step: the sandbox labels what it makes for it with this. */
  readonly key: string;

  constructor(
    runsRoot: string,
    readonly identity: RunIdentity,
  ) {
    const key = createHash('sha256')
      .update(
        `${identity.workflowId}\n${identity.runId ? `${identity.runId}\n` : ''}${identity.stepPath}\n${identity.digest}`,
      )
      .digest('hex')
      .slice(0, 32);
    this.key = key;
    this.dir = join(runsRoot, key);
  }

  path(
    name:
      | 'claim.json'
      | 'launch.json'
      | 'started.json'
      | 'transcript.log'
      | 'tail.log'
      | 'result.json'
      | 'attaches.log'
      | 'diagnosis.json',
  ): string {
    return join(this.dir, name);
  }

  /** When this step was first claimed (launched) here, or undefined when it never was. */
  async claimedAtMs(): Promise<number | undefined> {
    const claim = await readJson<{ claimedAt?: string }>(this.path('claim.json'));
    const at = claim?.claimedAt ? Date.parse(claim.claimedAt) : NaN;
    return Number.isNaN(at) ? undefined : at;
  }

  async state(): Promise<RunState> {
    const finished = await readJson<RunFinished>(this.path('result.json'));
    const started = await readJson<RunStarted>(this.path('started.json'));
    if (finished && started) return { phase: 'finished', started, finished };
    const launch = await readJson<{ runnerPid: number }>(this.path('launch.json'));
    if (started) return { phase: 'started', started, runnerPid: launch?.runnerPid };
    if (existsSync(this.path('claim.json'))) return { phase: 'claimed', runnerPid: launch?.runnerPid };
    return { phase: 'new' };
  }

  /** Takes the run for launching. False when another executor (or an earlier attempt) already has it. */
  async claim(): Promise<boolean> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    try {
      const handle = await open(this.path('claim.json'), 'wx');
      await handle.writeFile(
        JSON.stringify({ ...this.identity, claimedAt: new Date().toISOString(), executorPid: process.pid }),
      );
      await handle.close();
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  }

  /** Re-takes a claim whose command provably never started (no started.json, runner gone). */
  async reclaim(): Promise<void> {
    await writeFile(
      this.path('claim.json'),
      JSON.stringify({ ...this.identity, reclaimedAt: new Date().toISOString(), executorPid: process.pid }),
    );
  }

  /** What the sandbox said of the failed run, once asked; undefined when it was not asked yet. */
  async keptDiagnosis(): Promise<{ diagnosis?: string } | undefined> {
    return readJson<{ diagnosis?: string }>(this.path('diagnosis.json'));
  }

  async keepDiagnosis(diagnosis: string | undefined): Promise<void> {
    await writeAtomic(this.path('diagnosis.json'), JSON.stringify(diagnosis ? { diagnosis } : {}));
  }

  async recordLaunch(runnerPid: number): Promise<void> {
    await writeAtomic(this.path('launch.json'), JSON.stringify({ runnerPid }));
  }

  async recordAttach(attempt: number): Promise<number> {
    await appendFile(
      this.path('attaches.log'),
      `${JSON.stringify({ at: new Date().toISOString(), pid: process.pid, attempt })}\n`,
    );
    return (await readFile(this.path('attaches.log'), 'utf8')).trim().split('\n').length;
  }

  /**
   * The last `bytes` of the output, decoded leniently (a cut may split a character): from the
   * rolling tail once the transcript was capped, else from the transcript.
   */
  async tail(bytes = 4096): Promise<{ text: string; size: number }> {
    const file = existsSync(this.path('tail.log')) ? this.path('tail.log') : this.path('transcript.log');
    try {
      const size = (await stat(file)).size;
      const handle = await open(file, 'r');
      try {
        const length = Math.min(bytes, size);
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, size - length);
        return { text: buffer.toString('utf8'), size };
      } finally {
        await handle.close();
      }
    } catch {
      return { text: '', size: 0 };
    }
  }
}

export async function writeAtomic(path: string, content: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, content);
  await rename(temp, path);
}
