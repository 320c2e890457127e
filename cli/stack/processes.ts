/** How the embedded stack's processes are started: the same commands for `up` and for tests. */
import { compiledEntry } from '../../workers/compile.js';

export type WorkerName = 'control' | 'executor';

/** `node <bundle>` for a worker: plain JavaScript, no TypeScript loader in a long-lived process. */
export async function workerCommand(name: WorkerName): Promise<{ file: string; args: string[] }> {
  return {
    file: process.execPath,
    args: ['--max-semi-space-size=2', await compiledEntry(`workers/${name}.ts`)],
  };
}

export interface StackFile {
  supervisorPid: number;
  temporalAddress: string;
  temporalUi?: string | undefined;
  namespace: string;
  backend: 'jail' | 'docker';
  /** Why the jail runs instead of Docker, when that was not asked for. */
  sandboxWarning?: string | undefined;
  /** Where the executor reaches Temporal: the worker gate. */
  gateAddress?: string | undefined;
  pids: Record<string, number>;
  startedAt: string;
  ready: boolean;
}
