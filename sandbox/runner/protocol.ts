/** Messages between the executor and a runner process over the runner's IPC channel. */
export interface RunnerJob {
  runDir: string;
  file: string;
  args: string[];
  /** Environment of the process the runner starts (the jail clears it again inside). */
  env?: Record<string, string> | undefined;
  /** Transcript bytes kept; output past this is counted and dropped with a marker. */
  maxTranscriptBytes: number;
  /** The step's own time limit: the runner stops the command after this, even with no executor alive. */
  timeoutMs: number;
  /**
   * How to stop the step when signals to the command do not reach it (it runs in a container):
   * run at the time limit or on SIGTERM instead of signalling the command, and once more after
   * the command ended. The result is written only once it has succeeded (exit 0), or has failed
   * for STOP_CONFIRM_MS.
   */
  stop?: { file: string; args: string[]; env?: Record<string, string> | undefined } | undefined;
}

export type ToRunner = { type: 'job'; job: RunnerJob };
export type FromRunner =
  | { type: 'ready' }
  | { type: 'started'; startedAtMs: number; pid: number }
  | { type: 'failed'; error: string };
