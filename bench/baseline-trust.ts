/**
 * The baseline bench/trust.ts measures the executor's trust against: the same executor worker
 * (workers/executor.ts: its chain from the pinned root, its grant-use ledger, the same sandbox and
 * worker options), composed with a trust that neither signs results nor keeps the once-only
 * ledger — the executor as it was before results were attested. It exists only here: the product
 * composes `executorTrust`, with no switch to reach this one.
 */
import type { ExecutorTrust, OnceOnlyLedger } from '../activities/step-trust.js';
import { TASK_QUEUES } from '../core/names.js';
import { loadConfig } from '../workers/config.js';
import { createExecutorWorker, executorTrust } from '../workers/executor.js';
import { runMain } from '../workers/main.js';
import { chooseExecutorSandbox } from '../workers/sandbox-choice.js';

/** Keeps nothing: no nonce is spent, no plan ends, no result is remembered. */
class NoLedger implements OnceOnlyLedger {
  async planEnded(): Promise<void> {}
  async endOf(): Promise<undefined> {
    return undefined;
  }
  async spendNonces(): Promise<void> {}
  async recordResult(): Promise<void> {}
  async resultsOf(): Promise<Map<string, string[]>> {
    return new Map();
  }
}

/** `product` without its once-only ledger and with results left unsigned. */
export function baselineTrust(product: ExecutorTrust): ExecutorTrust {
  return { ...product, ledger: new NoLedger(), attest: async (_input, result) => result };
}

/**
 * The executor worker's main (workers/executor.ts), with the baseline trust. bench/trust.ts bundles
 * a call of this and starts it the way the stack starts the real executor.
 */
export function runBaselineExecutor(): void {
  runMain('baseline executor worker', async () => {
    const config = loadConfig();
    const sandbox = await chooseExecutorSandbox(config);
    if (sandbox.warning) console.error(sandbox.warning);
    const trust = baselineTrust(await executorTrust(config));
    const { worker, runners } = await createExecutorWorker(config, undefined, sandbox.name, trust);
    console.error(`baseline executor worker polling ${TASK_QUEUES.sandbox} (sandbox: ${sandbox.name})`);
    try {
      await worker.run();
    } finally {
      runners.close();
    }
  });
}
