/**
 * A sandbox backend turns "run this command in that workspace" into a process argv that
 * cannot reach the control plane. The jail (bubblewrap) is the first; Docker slots in beside it.
 */
export interface SandboxCommand {
  /** What `prepareWorkspace` returned: a host directory (jail) or a container id (Docker). */
  workspace: string;
  /** Working directory relative to the workspace root (validated: stays inside). */
  cwd: string;
  env: Record<string, string>;
  run: string;
  /** The step's time limit (the runner enforces it; a backend whose process outlives the runner's kill enforces it too). */
  timeoutMs: number;
  /** Which execution of which step this is (Docker labels the step's container with it). */
  execution?: StepExecution;
}

/** One execution of a step: what a backend makes for it carries this, so it can be found again. */
export interface StepExecution {
  workspaceId: string;
  stepPath: string;
  /** The run directory's key: the same for every attempt that re-attaches to this execution. */
  runKey: string;
  /** The plan's `egress: true`. */
  egress: boolean;
}

/** An argv (with its own environment) the runner executes. */
export interface Argv {
  file: string;
  args: string[];
  env?: Record<string, string>;
}

/** What the runner executes in its PTY for a step. */
export interface StepLaunch extends Argv {
  /**
   * How to stop the step where signals to the runner's processes do not reach it (a container):
   * run at the time limit or on a stop, and once more when the command has ended. The step's
   * result is written only after it has finished, so a step reported ended has nothing left running.
   */
  stop?: Argv;
}

export interface FailedRun {
  exitCode: number | null;
  signal: string | null;
  startedAtMs: number;
  /** The execution's run key (what `StepExecution.runKey` was). */
  runKey?: string;
  timedOut?: boolean;
}

export interface WorkspaceOptions {
  /** The plan's `egress: true`: the workspace may reach the outside world, nothing of ours. */
  egress: boolean;
  /** The workspace's disk quota in bytes (the plan's `workspaceSize`); absent: the executor's default. */
  sizeBytes?: number | undefined;
}

/** A request the backend will never carry out (as opposed to one that failed for now). */
export class SandboxRefused extends Error {
  override readonly name = 'SandboxRefused';
}

export interface SandboxBackend {
  readonly name: 'jail' | 'docker';
  /** Creates the workspace if needed, with `cwd` inside it; returns the reference `argvFor` takes. */
  prepareWorkspace(workspaceId: string, cwd: string, options: WorkspaceOptions): Promise<string>;
  /**
   * Called when the plan that owns the workspace has ended: frees what runs, and the files too
   * when `removeFiles` (the plan's `keepWorkspace: false`).
   */
  releaseWorkspace(workspaceId: string, options: { removeFiles: boolean }): Promise<void>;
  /**
   * Why a step failed, when the sandbox knows more than the exit status says (Docker: the step's
   * container ran out of memory, or stopped under the step). Asked only for steps that did not
   * exit 0, before `releaseStep`.
   */
  explainFailure?(workspaceId: string, run: FailedRun): Promise<string | undefined>;
  /**
   * Removes what runs for workspaces not in `open` that were created before `createdBeforeMs`;
   * returns their ids. A workspace's files are never touched here.
   */
  reap?(open: ReadonlySet<string>, createdBeforeMs: number): Promise<string[]>;
  /** The argv the runner executes in its PTY (Docker creates the step's own container first). */
  argvFor(command: SandboxCommand): StepLaunch | Promise<StepLaunch>;
  /**
   * The step's result is kept (or the step was stopped without one): removes what `argvFor` made
   * for this execution. Idempotent.
   */
  releaseStep?(execution: StepExecution): Promise<void>;
}
