/** Small statistics helpers for benchmarks. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function summary(samples: number[]): {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
} {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
  };
}

export function line(label: string, samples: number[], unit = 'ms'): string {
  const s = summary(samples);
  const f = (v: number) => `${v.toFixed(1)}${unit}`;
  return `${label.padEnd(52)} n=${String(s.n).padEnd(5)} p50=${f(s.p50).padEnd(9)} p90=${f(s.p90).padEnd(9)} p99=${f(s.p99).padEnd(9)} max=${f(s.max)}`;
}

/** Resident memory (KiB) of a process and all its descendants, from /proc. */
export async function treeRssKiB(
  rootPid: number,
): Promise<{ total: number; byProcess: { pid: number; name: string; rssKiB: number }[] }> {
  const { readdir, readFile } = await import('node:fs/promises');
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  const rss = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = await readFile(`/proc/${entry}/status`, 'utf8');
      const pid = Number(entry);
      parents.set(pid, Number(/PPid:\s+(\d+)/.exec(status)?.[1]));
      names.set(pid, /Name:\s+(.+)/.exec(status)?.[1] ?? '?');
      rss.set(pid, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // exited while we looked
    }
  }
  const tree = new Set([rootPid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, parent] of parents)
      if (tree.has(parent) && !tree.has(pid)) grew = tree.add(pid) !== undefined;
  }
  const byProcess = [...tree].map((pid) => ({ pid, name: names.get(pid) ?? '?', rssKiB: rss.get(pid) ?? 0 }));
  return { total: byProcess.reduce((a, p) => a + p.rssKiB, 0), byProcess };
}
