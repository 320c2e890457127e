/**
 * What was sent for each notice, on disk: one small file per (notice key, target), written before
 * the request leaves ("sending") and after the channel answered ("sent"). A retried activity skips
 * what was sent; a "sending" left by a worker that died mid-request is the one ambiguous case,
 * resolved per channel (ntfy can be asked what it holds; push channels replace by tag).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface LedgerEntry {
  /** refused: the channel refused our request for good (a retry of the notice would not help it). */
  state: 'sending' | 'sent' | 'refused';
  at: string;
  detail?: string | undefined;
}

export class DeliveryLedger {
  constructor(private readonly dir: string) {}

  private file(noticeKey: string, targetId: string): string {
    return join(
      this.dir,
      `${createHash('sha256').update(`${noticeKey}\n${targetId}`).digest('hex').slice(0, 40)}.json`,
    );
  }

  async get(noticeKey: string, targetId: string): Promise<LedgerEntry | undefined> {
    try {
      return JSON.parse(await readFile(this.file(noticeKey, targetId), 'utf8')) as LedgerEntry;
    } catch {
      return undefined;
    }
  }

  async mark(noticeKey: string, targetId: string, entry: LedgerEntry): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = this.file(noticeKey, targetId);
    const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    await writeFile(temp, JSON.stringify(entry));
    await rename(temp, file);
  }

  async forget(noticeKey: string, targetId: string): Promise<void> {
    await rm(this.file(noticeKey, targetId), { force: true });
  }

  /** Drops entries older than `maxAgeMs` (a week by default): retries never come that late. */
  async prune(maxAgeMs = 7 * 24 * 3600_000): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      const path = join(this.dir, name);
      const info = await stat(path).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > maxAgeMs) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }
}
