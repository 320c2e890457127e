/**
 * The executor's own count of standing-approval uses, on this host: a grant limited to N uses runs
 * at most N distinct steps here, whatever the approvals it is handed claim. One file per grant,
 * replaced atomically; one use per step (workflow, path, digest), so an attempt that re-attaches
 * to a running step spends nothing more.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export class GrantUsesExceeded extends Error {
  override readonly name = 'GrantUsesExceeded';
}

export class GrantUseLedger {
  /** One write at a time: two steps of one grant at once must not both take the last use. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly dir: string) {}

  /** Records the use of `grantId` by step `useKey`; throws GrantUsesExceeded when it has none left. */
  spend(grantId: string, maxUses: number, useKey: string): Promise<number> {
    const next = this.queue.then(() => this.spendNow(grantId, maxUses, useKey));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async spendNow(grantId: string, maxUses: number, useKey: string): Promise<number> {
    if (!/^[0-9a-f]{16}$/.test(grantId)) throw new GrantUsesExceeded(`not a grant id: ${grantId}`);
    const file = join(this.dir, `${grantId}.json`);
    const uses = await readFile(file, 'utf8')
      .then((text) => JSON.parse(text) as string[])
      .catch(() => [] as string[]);
    const earlier = uses.indexOf(useKey);
    if (earlier >= 0) return earlier + 1;
    if (uses.length >= maxUses)
      throw new GrantUsesExceeded(
        `standing approval ${grantId} was used for ${uses.length} step${uses.length === 1 ? '' : 's'} on this executor host, its limit`,
      );
    uses.push(useKey);
    await mkdir(this.dir, { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(uses), { mode: 0o600 });
    await rename(temp, file);
    return uses.length;
  }
}
