/** How the embedded stack's processes are started: the same commands for `up` and for tests. */
import { resolve } from 'node:path';
import { PROJECT_ROOT } from '../../workers/config.js';

export type WorkerName = 'control' | 'executor';

export function workerCommand(name: WorkerName): { file: string; args: string[] } {
  return { file: process.execPath, args: ['--import', 'tsx', resolve(PROJECT_ROOT, 'workers', `${name}.ts`)] };
}

export interface StackFile {
  supervisorPid: number;
  temporalAddress: string;
  temporalUi?: string | undefined;
  namespace: string;
  backend: 'jail' | 'docker';
  pids: Record<string, number>;
  startedAt: string;
  ready: boolean;
}
