/**
 * Where MCP servers run: a fresh hardened container per call (Docker) or a jailed child process
 * (bubblewrap). Either way the server lives exactly as long as one call.
 */
import type { McpServerEntry } from '../../core/mcp/catalog.js';
import type { McpServerHandle } from './call.js';

export interface LaunchRequest {
  entry: McpServerEntry;
  /** The plan's workspace, mounted when the entry asks for it. */
  workspaceId: string;
  /** The workspace's disk quota in bytes (the plan's `workspaceSize`); absent: the executor's default. */
  workspaceSizeBytes?: number | undefined;
  stepPath: string;
  /** The same on every attempt of one call: finds what an earlier attempt left behind. */
  callKey: string;
}

export interface LaunchedServer extends McpServerHandle {
  /** Stops and removes the server; safe to call more than once. */
  dispose(): Promise<void>;
}

export interface McpLauncher {
  readonly name: 'docker' | 'jail';
  /** What a pin's `image` is for this entry here: the image id, or the jail's lock-file hash. */
  imageOf(entry: McpServerEntry): string | undefined;
  launch(request: LaunchRequest): Promise<LaunchedServer>;
  /** Removes servers an earlier attempt of the call left running; returns how many there were. */
  removeLeftovers(callKey: string): Promise<number>;
}

/** Keeps the last `max` bytes written to a stream (a server's stderr). */
export function tailKeeper(max = 1024): { push(chunk: Buffer): void; text(): string } {
  let kept = Buffer.alloc(0);
  return {
    push(chunk) {
      kept = Buffer.concat([kept, chunk]);
      if (kept.length > max) kept = kept.subarray(kept.length - max);
    },
    text: () => kept.toString('utf8'),
  };
}
