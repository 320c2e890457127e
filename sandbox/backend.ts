/**
 * A sandbox backend turns "run this command in that workspace" into a process argv that
 * cannot reach the control plane. The jail (bubblewrap) is the first; Docker slots in beside it.
 */
export interface SandboxCommand {
  /** Host directory of the plan's workspace. */
  workspaceDir: string;
  /** Working directory relative to the workspace root (validated: stays inside). */
  cwd: string;
  env: Record<string, string>;
  run: string;
}

export interface SandboxBackend {
  readonly name: 'jail' | 'docker';
  /** Creates (if needed) and returns the host directory of a workspace. */
  prepareWorkspace(workspaceId: string): Promise<string>;
  /** The argv the runner executes in its PTY. */
  argvFor(command: SandboxCommand): { file: string; args: string[] };
}
