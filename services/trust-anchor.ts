/**
 * A process's anchor (core/devices/anchor.ts) kept in its state folder: the pinned root, and the
 * longest chain from it this process has seen, written atomically whenever it grows. The executor,
 * the control worker, the API and the CLI each keep their own, so none of them is talked into a
 * chain shorter than one it has seen (revocations cut off) or one from another root.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Envelope } from '../core/approval/dsse.js';
import { ChainAnchor, ChainRefused, type Reconciled } from '../core/devices/anchor.js';

export { ChainRefused };

export class TrustAnchorFile {
  private anchor?: ChainAnchor;
  /** One reconciliation at a time: two activities must not both write a chain. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    /** Where the held chain is kept (JSON list of records). */
    private readonly chainFile: string,
    /** The pinned root, read on every call (pairing after start-up takes effect without a restart). */
    private readonly pinnedRootKeyId: () => string | undefined,
  ) {}

  /** The registry to trust given `records` (see ChainAnchor.reconcile); the held chain is kept when it grows. */
  reconcile(records: readonly Envelope[]): Promise<Reconciled> {
    const next = this.queue.then(() => this.reconcileNow(records));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** A root is pinned here (before pairing there is nothing to hold to). */
  isPinned(): boolean {
    return this.pinnedRoot() !== undefined;
  }

  /** The pinned root's key id, if any. */
  pinnedRoot(): string | undefined {
    return this.pinnedRootKeyId();
  }

  /** The chain held now (for a registry that lost records: `countersign registry restore`). */
  async held(): Promise<readonly Envelope[]> {
    return (await this.load()).records;
  }

  private async load(): Promise<ChainAnchor> {
    const root = this.pinnedRootKeyId();
    if (!root)
      throw new ChainRefused(
        'no_root',
        'no root device is pinned here yet: pair a device first (countersign pair, or the pairing link)',
      );
    if (this.anchor?.rootKeyId === root) return this.anchor;
    const kept = await readFile(this.chainFile, 'utf8')
      .then((text) => JSON.parse(text) as { rootKeyId?: string; records?: Envelope[] })
      .catch(() => undefined);
    // A chain kept under another root (a re-paired installation) is not this root's chain.
    this.anchor = ChainAnchor.pinned(root, kept?.rootKeyId === root ? (kept.records ?? []) : []);
    return this.anchor;
  }

  private async reconcileNow(records: readonly Envelope[]): Promise<Reconciled> {
    const anchor = await this.load();
    const reconciled = anchor.reconcile(records);
    if (reconciled.grew) {
      await mkdir(dirname(this.chainFile), { recursive: true });
      const temp = `${this.chainFile}.${process.pid}.tmp`;
      await writeFile(temp, JSON.stringify({ rootKeyId: anchor.rootKeyId, records: anchor.records }), {
        mode: 0o600,
      });
      await rename(temp, this.chainFile);
    }
    return reconciled;
  }
}
