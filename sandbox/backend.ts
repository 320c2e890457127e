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
}

export interface FailedRun {
  exitCode: number | null;
  signal: string | null;
  startedAtMs: number;
}

export interface WorkspaceOptions {
  /** The plan's `egress: true`: the workspace may reach the outside world, nothing of ours. */
  egress: boolean;
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
   * Why a step failed, when the sandbox knows more than the exit status says (Docker: the
   * workspace ran out of memory, or its container stopped under the step). Asked only for
   * steps that did not exit 0.
   */
  explainFailure?(workspaceId: string, run: FailedRun): Promise<string | undefined>;
  /**
   * Removes what runs for workspaces not in `open` that were created before `createdBeforeMs`;
   * returns their ids. A workspace's files are never touched here.
   */
  reap?(open: ReadonlySet<string>, createdBeforeMs: number): Promise<string[]>;
  /** The argv the runner executes in its PTY. */
  argvFor(command: SandboxCommand): { file: string; args: string[]; env?: Record<string, string> };
}
