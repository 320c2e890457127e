/** `countersign history ID`: the timeline, with every approval re-verified from raw history. */
import { readFile } from 'node:fs/promises';
import { planTimeline, renderTimeline } from '../../services/history/index.js';
import type { CliContext } from '../context.js';
import { terminalJson } from '../format.js';

export async function historyCommand(
  ctx: CliContext,
  planRef: string,
  options: { json?: boolean },
): Promise<void> {
  const pinnedRootKeyId =
    process.env.COUNTERSIGN_ROOT_KEY_ID ??
    (await readFile(ctx.paths.pinnedRoot, 'utf8').catch(() => '')).trim();
  const timeline = await planTimeline(await ctx.client(), planRef, {
    pinnedRootKeyId: pinnedRootKeyId || undefined,
  });
  console.log(options.json ? terminalJson(timeline) : renderTimeline(timeline));
}
