/**
 * Process configuration, validated once at start-up. Every process (workers, CLI, API) reads
 * the same variables; a bad value stops the process with a message that names the variable.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PROJECT_ROOT } from './project-root.js';

export { PROJECT_ROOT };

export interface Config {
  /** The state folder: keys, workspaces, run directories, the Temporal database, logs. */
  home: string;
  temporalAddress: string;
  namespace: string;
  /**
   * Where this process's Temporal client certificate lives (services/temporal/tls.ts). Set, every
   * connection to Temporal is mutual TLS through the stack's door; unset, plain (a Temporal you
   * run yourself, reachable only by whom you chose).
   */
  temporalTlsDir?: string | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const home = resolve(env.COUNTERSIGN_HOME ?? resolve(PROJECT_ROOT, '.countersign'));
  const temporalAddress = env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  if (!/^[A-Za-z0-9.[\]:-]+:\d{1,5}$/.test(temporalAddress)) {
    throw new ConfigError(`TEMPORAL_ADDRESS must be host:port, got "${temporalAddress}"`);
  }
  const namespace = env.TEMPORAL_NAMESPACE ?? 'default';
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(namespace))
    throw new ConfigError(`TEMPORAL_NAMESPACE is not a valid namespace: "${namespace}"`);
  const temporalTlsDir = env.COUNTERSIGN_TEMPORAL_TLS_DIR
    ? resolve(env.COUNTERSIGN_TEMPORAL_TLS_DIR)
    : stackTemporalTlsDir(home);
  return { home, temporalAddress, namespace, temporalTlsDir };
}

/** The embedded stack's certificate folder in this state folder, once `countersign up` made it. */
export function stackTemporalTlsDir(home: string): string | undefined {
  return existsSync(resolve(home, 'tls', 'ca.crt')) ? resolve(home, 'tls') : undefined;
}

/** Where each thing lives inside the state folder. */
export function statePaths(home: string) {
  return {
    home,
    temporalDb: resolve(home, 'temporal.sqlite'),
    /** The stack's CA, the door's certificate and one client certificate per process kind. */
    temporalTls: resolve(home, 'tls'),
    /** The Unix socket into Temporal's private network namespace (in a folder of mode 0700). */
    temporalSocket: resolve(home, 'temporal', 'frontend.sock'),
    logs: resolve(home, 'logs'),
    stackFile: resolve(home, 'stack.json'),
    policyKey: resolve(home, 'control', 'policy-key.json'),
    gateLog: resolve(home, 'control', 'gates.jsonl'),
    /** The Web Push (VAPID) key pair; browsers' subscriptions are bound to its public half. */
    vapidKeys: resolve(home, 'control', 'vapid-keys.json'),
    /** What was sent for each notice, so a retried notice sends nothing twice. */
    notifyLedger: resolve(home, 'control', 'notify-ledger'),
    pinnedRoot: resolve(home, 'executor', 'pinned-root'),
    sandboxChoice: resolve(home, 'executor', 'sandbox'),
    runs: resolve(home, 'executor', 'runs'),
    /** Each process's own chain: its pinned root's records, the longest it has seen (core/devices/anchor.ts). */
    apiChain: resolve(home, 'api', 'trust-chain.json'),
    controlChain: resolve(home, 'control', 'trust-chain.json'),
    cliChain: resolve(home, 'cli', 'trust-chain.json'),
    executorChain: resolve(home, 'executor', 'trust-chain.json'),
    /** Approval nonces spent and plans ended, on this host (activities/execution-ledger.ts). */
    executionLedger: resolve(home, 'executor', 'ledger'),
    /** The executor's result key (role executor in the registry): it signs what ran. */
    executorKey: resolve(home, 'executor', 'executor-key.json'),
    /** How often each limited standing approval was used on this host. */
    grantUses: resolve(home, 'executor', 'grant-uses'),
    /** This installation's MCP catalog, with its images pinned (seeded from sandbox/mcp/catalog.json). */
    mcpCatalog: resolve(home, 'executor', 'mcp-catalog.json'),
    workspaces: resolve(home, 'workspaces'),
    cliKey: resolve(home, 'cli', 'device-key.json'),
    build: resolve(home, 'build'),
  };
}
