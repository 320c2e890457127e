/** How the embedded stack's processes are started: the same commands for `up` and for tests. */
import { compiledEntry } from '../../workers/compile.js';

/** The long-lived processes next to Temporal: both workers and the API. */
export type StackProcessName = 'control' | 'executor' | 'api';

const ENTRIES: Record<StackProcessName, string> = {
  control: 'workers/control.ts',
  executor: 'workers/executor.ts',
  api: 'api/server.ts',
};

/** `node <bundle>` for a stack process: plain JavaScript, no TypeScript loader in a long-lived process. */
export async function stackProcessCommand(name: StackProcessName): Promise<{ file: string; args: string[] }> {
  return {
    file: process.execPath,
    args: ['--max-semi-space-size=2', await compiledEntry(ENTRIES[name])],
  };
}

export interface StackFile {
  supervisorPid: number;
  temporalAddress: string;
  temporalUi?: string | undefined;
  /** Why Temporal's frontend is open to every local program, when it is. */
  temporalWarning?: string | undefined;
  namespace: string;
  backend: 'jail' | 'docker';
  /** Why the jail runs instead of Docker, when that was not asked for. */
  sandboxWarning?: string | undefined;
  /** Where the executor reaches Temporal: the worker gate. */
  gateAddress?: string | undefined;
  /** The API and web app, where phones pair and approve. */
  apiUrl?: string | undefined;
  pids: Record<string, number>;
  startedAt: string;
  ready: boolean;
}
