/**
 * The executor's own once-only ledger, on its host: which approval nonces were spent on which step,
 * and which plans ended (released their workspace, or were found closed by the janitor). Temporal's
 * history can be reset by anyone who can talk to it: a reset run forgets the nonces it used and can
 * revive a plan that was cancelled. This ledger does not forget: an approval is spent on one step
 * only, and a plan that ended runs nothing more on approvals given before its end.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface PlanEnd {
  atMs: number;
  /** What ended it: its workspace released at its end, or the janitor finding it closed. */
  how: string;
}

const fileName = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 40);

export class LedgerRefusal extends Error {
  override readonly name = 'LedgerRefusal';
}

export class ExecutionLedger {
  constructor(private readonly dir: string) {}

  /** Records the end of `workflowId` (the first end counts; later ones change nothing). */
  async planEnded(workflowId: string, how: string): Promise<void> {
    await this.createOnce(join(this.dir, 'ended', fileName(workflowId)), {
      workflowId,
      atMs: Date.now(),
      how,
    });
  }

  /** When `workflowId`, or a plan it is a sub-plan of, ended; undefined while none did. */
  async endOf(workflowId: string): Promise<(PlanEnd & { workflowId: string }) | undefined> {
    const parts = workflowId.split('.');
    for (let i = parts.length; i >= 1; i--) {
      const id = parts.slice(0, i).join('.');
      const kept = await readFile(join(this.dir, 'ended', fileName(id)), 'utf8')
        .then((text) => JSON.parse(text) as PlanEnd)
        .catch(() => undefined);
      if (kept) return { ...kept, workflowId: id };
    }
    return undefined;
  }

  /**
   * Spends each nonce on `stepKey` (workflow, first run, step path, digest). The same step again
   * (a retried attempt, a re-attach) spends nothing more; a nonce already spent on another step is
   * refused with LedgerRefusal.
   */
  async spendNonces(nonces: readonly string[], stepKey: string): Promise<void> {
    for (const nonce of nonces) {
      const path = join(this.dir, 'nonces', fileName(nonce));
      if (await this.createOnce(path, { stepKey })) continue;
      const spent = await readFile(path, 'utf8')
        .then((text) => (JSON.parse(text) as { stepKey: string }).stepKey)
        .catch(() => '');
      if (spent !== stepKey)
        throw new LedgerRefusal(
          `approval nonce ${nonce} was already spent on another step here (${spent || 'unreadable record'})`,
        );
    }
  }

  /** Keeps the hash of a result attestation this host signed for `stepPath` of `workflowId`. */
  async recordResult(workflowId: string, stepPath: string, attestationSha256: string): Promise<void> {
    const dir = join(this.dir, 'results', fileName(workflowId));
    await this.createOnce(join(dir, fileName(`${stepPath}\n${attestationSha256}`)), {
      stepPath,
      attestationSha256,
    });
  }

  /** Every result this host signed for `workflowId`: step path → attestation hashes (a step may have several attempts). */
  async resultsOf(workflowId: string): Promise<Map<string, string[]>> {
    const dir = join(this.dir, 'results', fileName(workflowId));
    const results = new Map<string, string[]>();
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      const kept = await readFile(join(dir, name), 'utf8')
        .then((text) => JSON.parse(text) as { stepPath: string; attestationSha256: string })
        .catch(() => undefined);
      if (kept) results.set(kept.stepPath, [...(results.get(kept.stepPath) ?? []), kept.attestationSha256]);
    }
    return results;
  }

  /** Writes `content` to `path` unless it exists (one exclusive create). Returns whether it wrote. */
  private async createOnce(path: string, content: unknown): Promise<boolean> {
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(JSON.stringify(content));
      await handle.close();
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  }
}
