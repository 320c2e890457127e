/** Waiting for something a local server records: already recorded, or yet to come, within a time. */
export class Waiters<T> {
  private readonly pending = new Set<{ predicate: (item: T) => boolean; resolve: (item: T) => void }>();

  /** `seen`: the server's record, in order; `explain`: the timeout's message, saying what was seen. */
  constructor(
    private readonly seen: readonly T[],
    private readonly explain: (timeoutMs: number) => string,
  ) {}

  /** Call once `item` has been added to the record. */
  notify(item: T): void {
    for (const waiter of this.pending) if (waiter.predicate(item)) waiter.resolve(item);
  }

  waitFor(predicate: (item: T) => boolean, timeoutMs = 5000): Promise<T> {
    const found = this.seen.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (item: T) => {
          clearTimeout(timer);
          this.pending.delete(waiter);
          resolve(item);
        },
      };
      const timer = setTimeout(() => {
        this.pending.delete(waiter);
        reject(new Error(this.explain(timeoutMs)));
      }, timeoutMs);
      this.pending.add(waiter);
    });
  }
}
