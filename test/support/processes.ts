/** Real stack processes (workers, the API) for fault tests and benchmarks: started exactly like `countersign up` starts them. */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stackProcessCommand, type StackProcessName } from '../../cli/stack/processes.js';
import { PROJECT_ROOT, type Config } from '../../workers/config.js';

export class WorkerProcess {
  child?: ChildProcess;
  starts = 0;

  constructor(
    readonly name: StackProcessName,
    private readonly config: Config,
    private readonly logDir: string,
    /** More environment for this process (the API's port, say). */
    private readonly extraEnv: Record<string, string> = {},
  ) {}

  async start(): Promise<void> {
    const { file, args } = await stackProcessCommand(this.name);
    const log = openSync(join(this.logDir, `${this.name}-worker.log`), 'a');
    this.child = spawn(file, args, {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', log, log],
      env: {
        ...process.env,
        COUNTERSIGN_HOME: this.config.home,
        TEMPORAL_ADDRESS: this.config.temporalAddress,
        ...(this.config.temporalTlsDir ? { COUNTERSIGN_TEMPORAL_TLS_DIR: this.config.temporalTlsDir } : {}),
        TEMPORAL_NAMESPACE: this.config.namespace,
        ...this.extraEnv,
      },
    });
    this.starts++;
  }

  /** SIGKILL: no shutdown hooks, no draining — the way a crash looks. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await Promise.race([exited, sleep(15_000)]);
  }
}
