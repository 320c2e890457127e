/**
 * A runner: a small detached process that owns one step's PTY. It outlives the executor that
 * started it, so an executor crash never kills or repeats a running step. Started as a warm
 * spare; takes exactly one job over IPC, then disconnects and runs to the end on its own.
 */
import { spawn as spawnProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node-pty';
import type { FromRunner, RunnerJob, ToRunner } from './protocol.js';
import { writeAtomic, type RunFinished, type RunStarted } from './run-dir.js';
import { END_ACK_SIGNAL, EndMarkerScanner, holdSession, newEndMarker } from './session-holder.js';

const KILL_GRACE_MS = 2_000;
/** How long a failing stop command is tried again before the result is written without it. */
const STOP_CONFIRM_MS = 60_000;
const ROLLING_TAIL_CHARS = 16 * 1024;
let busy = false;

function send(message: FromRunner): void {
  if (process.connected) process.send?.(message);
}

function signalName(signal: number | undefined): string | null {
  if (!signal) return null;
  return Object.entries(constants.signals).find(([, n]) => n === signal)?.[0] ?? `signal ${signal}`;
}

function signalHolder(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone: nothing left to signal.
  }
}

/** Runs the job's stop command until it succeeds, or for STOP_CONFIRM_MS; resolves whether it did. */
async function confirmStopped(stop: NonNullable<RunnerJob['stop']>): Promise<boolean> {
  const deadline = Date.now() + STOP_CONFIRM_MS;
  for (;;) {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawnProcess(stop.file, stop.args, { env: stop.env ?? {}, stdio: 'ignore' });
      child.once('error', () => resolve(null));
      child.once('exit', (status) => resolve(status));
    });
    if (code === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(1_000);
  }
}

async function run(job: RunnerJob): Promise<void> {
  busy = true;
  await writeAtomic(join(job.runDir, 'launch.json'), JSON.stringify({ runnerPid: process.pid }));
  const transcript = openSync(join(job.runDir, 'transcript.log'), 'a');
  let outputBytes = 0;
  let truncated = false;
  let timedOut = false;
  // Past the cap, the end of the output still matters most (that is where errors are): keep a
  // rolling tail and write it beside the transcript.
  let rollingTail = '';
  let tailDirty = false;
  // One write at a time: the timer's write and the final one share a temp file, and two renames
  // of it crashed the runner before it could record the result (seen as "vanished" under load).
  let tailWrites: Promise<void> = Promise.resolve();
  const flushTail = () => {
    tailWrites = tailWrites.then(() => {
      if (!tailDirty) return;
      tailDirty = false;
      return writeAtomic(join(job.runDir, 'tail.log'), rollingTail);
    });
    return tailWrites;
  };
  const tailTimer = setInterval(() => void flushTail(), 1_000);
  tailTimer.unref();
  const output = (text: string) => {
    if (!truncated) writeSync(transcript, text);
    else {
      rollingTail = (rollingTail + text).slice(-ROLLING_TAIL_CHARS);
      tailDirty = true;
    }
  };
  const startedAtMs = Date.now();
  const started: RunStarted = { pid: process.pid, startedAtMs };
  // started.json goes to disk before the command exists: a crash after this line is never re-run.
  await writeAtomic(join(job.runDir, 'started.json'), JSON.stringify(started));

  let stopping: Promise<boolean> | undefined;
  const stopStep = (stop: NonNullable<RunnerJob['stop']>) => (stopping ??= confirmStopped(stop));

  const finish = async (exitCode: number | null, signal: string | null) => {
    const endedAtMs = Date.now();
    // The command's end is not the step's end when the step runs elsewhere (its container):
    // nothing of it may run once its result says it ended.
    if (job.stop && !(await stopStep(job.stop)))
      output(`\n[countersign: could not confirm that the step stopped (${job.stop.file} failed)]\n`);
    const finished: RunFinished = {
      exitCode,
      signal,
      durationMs: endedAtMs - startedAtMs,
      finishedAtMs: Date.now(),
      outputBytes,
      truncated,
      timedOut,
    };
    closeSync(transcript);
    clearInterval(tailTimer);
    await flushTail();
    await writeAtomic(join(job.runDir, 'result.json'), JSON.stringify(finished));
    process.exit(0);
  };

  const marker = newEndMarker();
  const endScanner = new EndMarkerScanner(marker);
  const held = holdSession(job.file, job.args, marker);
  let term;
  try {
    term = spawn(held.file, held.args, {
      name: 'xterm-256color',
      cols: 120,
      rows: 40,
      cwd: '/',
      env: job.env ?? {},
    });
  } catch (error) {
    writeSync(transcript, `countersign: could not start the step: ${(error as Error).message}\n`);
    send({ type: 'failed', error: (error as Error).message });
    await finish(127, null);
    return;
  }
  send({ type: 'started', startedAtMs, pid: term.pid });
  process.disconnect?.();

  const record = (data: string) => {
    if (!data) return;
    const bytes = Buffer.byteLength(data);
    outputBytes += bytes;
    if (!truncated && outputBytes > job.maxTranscriptBytes) {
      writeSync(
        transcript,
        `\n[countersign: output truncated after ${job.maxTranscriptBytes} bytes; the step kept running]\n`,
      );
      truncated = true;
      rollingTail = `[countersign: transcript capped at ${job.maxTranscriptBytes} bytes; this is the end of the output]\n`;
    }
    output(data);
  };
  const holderPid = term.pid;
  term.onData((data) => {
    const { text, ended } = endScanner.push(data);
    record(text);
    // Everything the step wrote has been read: the holder may end the session now.
    if (ended) signalHolder(holderPid, END_ACK_SIGNAL);
  });
  term.onExit(({ exitCode, signal }) => {
    record(endScanner.flush());
    const name = signalName(signal);
    void finish(name ? null : exitCode, name);
  });
  const stop = () => {
    if (job.stop) {
      // A signal would reach only the client of the step's container: its own stop ends the step,
      // and the client with it. Past the grace, whatever is left of the session goes.
      void stopStep(job.stop).then(() =>
        setTimeout(() => signalHolder(-holderPid, 'SIGKILL'), KILL_GRACE_MS).unref(),
      );
      return;
    }
    // The holder passes SIGTERM on to the step; past the grace, the whole process group goes.
    signalHolder(holderPid, 'SIGTERM');
    setTimeout(() => signalHolder(-holderPid, 'SIGKILL'), KILL_GRACE_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setTimeout(() => {
    timedOut = true;
    output(
      `\n[countersign: the step reached its ${Math.round(job.timeoutMs / 1000)} s time limit and was stopped]\n`,
    );
    stop();
  }, job.timeoutMs);
}

process.on('message', (message: ToRunner) => {
  if (message.type === 'job' && !busy) {
    run(message.job).catch((error: unknown) => {
      send({ type: 'failed', error: (error as Error).message });
      process.exit(1);
    });
  }
});
// An idle spare whose executor went away has nothing to do.
process.on('disconnect', () => {
  if (!busy) process.exit(0);
});
send({ type: 'ready' });
