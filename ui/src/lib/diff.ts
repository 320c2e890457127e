/**
 * Readable diffs for steps that change files, where the change is known before it runs: the
 * filesystem server's `edit_file` (old and new text) and `write_file` (the whole new content).
 */
import type { StepNode } from '../../../core/plan/types.js';

export interface DiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

export interface FileChange {
  path: string;
  /** What the diff shows, in words. */
  note: string;
  lines: DiffLine[];
}

const MAX_LCS_CELLS = 250_000;

/** Line diff by longest common subsequence; falls back to all-removed/all-added when large. */
export function lineDiff(before: string, after: string): DiffLine[] {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.length * b.length > MAX_LCS_CELLS)
    return [
      ...a.map((text) => ({ op: '-' as const, text })),
      ...b.map((text) => ({ op: '+' as const, text })),
    ];
  const table: number[][] = Array.from({ length: a.length + 1 }, () =>
    new Array<number>(b.length + 1).fill(0),
  );
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      table[i]![j] =
        a[i] === b[j] ? table[i + 1]![j + 1]! + 1 : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', text: a[i]! });
      i++;
      j++;
    } else if (table[i + 1]![j]! >= table[i]![j + 1]!) out.push({ op: '-', text: a[i++]! });
    else out.push({ op: '+', text: b[j++]! });
  }
  while (i < a.length) out.push({ op: '-', text: a[i++]! });
  while (j < b.length) out.push({ op: '+', text: b[j++]! });
  return out;
}

/** The file changes a step will make, when its arguments say them; empty when unknown. */
export function fileChanges(node: StepNode): FileChange[] {
  if (node.kind !== 'mcp') return [];
  const args = node.arguments;
  const path = typeof args['path'] === 'string' ? args['path'] : '(no path given)';
  if (node.tool === 'edit_file' && Array.isArray(args['edits'])) {
    return args['edits'].flatMap((edit: unknown, index: number) => {
      if (typeof edit !== 'object' || edit === null) return [];
      const { oldText, newText } = edit as { oldText?: unknown; newText?: unknown };
      if (typeof oldText !== 'string' || typeof newText !== 'string') return [];
      return [
        {
          path,
          note: `edit ${index + 1} of ${(args['edits'] as unknown[]).length}: replaces the exact text below`,
          lines: lineDiff(oldText, newText),
        },
      ];
    });
  }
  if (node.tool === 'write_file' && typeof args['content'] === 'string') {
    return [
      {
        path,
        note: 'writes the whole file (any current content is replaced; it is not known here)',
        lines: args['content'].split('\n').map((text) => ({ op: '+' as const, text })),
      },
    ];
  }
  return [];
}
