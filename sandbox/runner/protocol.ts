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
}

export type ToRunner = { type: 'job'; job: RunnerJob };
export type FromRunner =
  | { type: 'ready' }
  | { type: 'started'; startedAtMs: number; pid: number }
  | { type: 'failed'; error: string };
