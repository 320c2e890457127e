/**
 * Keeps the egress firewall in step with the machine: scripts/egress-network --rules re-derives
 * the blocked networks (every directly attached one, whatever its range) and the resolvers, and
 * swaps the rules in atomically. It runs before each egress container starts and, once an egress
 * step has run, whenever a route or an address of this host changes (`ip monitor`), so a network
 * attached while a step runs is cut within a moment. Needs root (iptables).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { EgressFirewall } from './broker.js';

const run = promisify(execFile);
/** Route changes come in bursts (an interface going up adds several): one refresh per burst. */
const SETTLE_MS = 200;

export interface WatchedEgressFirewall extends EgressFirewall {
  /** Stops watching the machine's routes. */
  close(): void;
}

export function scriptEgressFirewall(
  script: string,
  log: { warn(message: string): void } = { warn: (message) => console.error(message) },
): WatchedEgressFirewall {
  let running: Promise<void> | undefined;
  let again: Promise<void> | undefined;
  let watcher: ChildProcess | undefined;
  let settle: NodeJS.Timeout | undefined;

  const once = async () => {
    try {
      await run(script, ['--rules'], { timeout: 30_000 });
    } catch (error) {
      const err = error as Error & { stderr?: string };
      throw new Error(err.stderr?.trim() || err.message);
    }
  };
  // One at a time; a request made while one runs gets the run after it (the machine may have
  // changed since the running one read it), and requests meanwhile share that run.
  const refresh = (): Promise<void> => {
    if (!running) {
      running = once().finally(() => (running = undefined));
      return running;
    }
    again ??= running
      .catch(() => undefined)
      .then(() => {
        again = undefined;
        return refresh();
      });
    return again;
  };

  const watch = () => {
    if (watcher) return;
    // --pdeathsig: killed when the thread that started it ends, even by a signal.
    watcher = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'ip', 'monitor', 'route', 'address'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    watcher.unref();
    (watcher.stdout as unknown as { unref?: () => void }).unref?.();
    watcher.stdout!.on('data', () => {
      clearTimeout(settle);
      settle = setTimeout(() => {
        refresh().catch((error: unknown) =>
          log.warn(`the egress firewall could not follow a network change: ${(error as Error).message}`),
        );
      }, SETTLE_MS);
      settle.unref();
    });
    // Goes with this process, however it ends (an unref'd child would outlive it).
    const stop = () => watcher?.kill();
    process.once('exit', stop);
    watcher.on('exit', () => {
      process.removeListener('exit', stop);
      watcher = undefined;
    });
    watcher.on('error', (error) =>
      log.warn(`cannot watch this host's routes (ip monitor): ${error.message}`),
    );
  };

  return {
    async refresh() {
      watch();
      await refresh();
    },
    close() {
      clearTimeout(settle);
      watcher?.kill();
      watcher = undefined;
    },
  };
}
