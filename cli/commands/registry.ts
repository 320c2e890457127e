/** `countersign registry restore`: put back a device registry that was replaced or rolled back. */
import { ChainAnchor } from '../../core/devices/anchor.js';
import type { Envelope } from '../../core/approval/dsse.js';
import { restoreRegistry } from '../../services/devices.js';
import { UserFacingError } from '../../services/errors.js';
import { TrustAnchorFile } from '../../services/trust-anchor.js';
import { pinnedRootReader } from '../../workers/key-file.js';
import type { CliContext } from '../context.js';
import { bold, dim, green } from '../format.js';

/** The longest chain from the pinned root that any process of this installation holds. */
async function longestHeldChain(ctx: CliContext, root: string): Promise<readonly Envelope[]> {
  const pinned = pinnedRootReader(ctx.paths.pinnedRoot);
  let longest: readonly Envelope[] = [];
  for (const file of [
    ctx.paths.cliChain,
    ctx.paths.apiChain,
    ctx.paths.controlChain,
    ctx.paths.executorChain,
  ]) {
    const held = await new TrustAnchorFile(file, pinned).held().catch(() => []);
    try {
      ChainAnchor.pinned(root, held);
    } catch {
      continue; // a chain that does not verify from the pinned root is nobody's to restore
    }
    if (held.length > longest.length) longest = held;
  }
  return longest;
}

export async function restoreRegistryCommand(ctx: CliContext): Promise<void> {
  const root = ctx.anchor.pinnedRoot();
  if (!root)
    throw new UserFacingError(
      'no root device is pinned here: nothing to restore the registry from',
      'not_paired',
    );
  const records = await longestHeldChain(ctx, root);
  if (!records.length)
    throw new UserFacingError('no process here holds device records from the pinned root', 'not_found');
  const { had, restored } = await restoreRegistry(await ctx.client(), records, root);
  console.log(
    `${green('restored')} the device registry: ${bold(String(restored))} records from the pinned root ${root.slice(0, 12)}… ${dim(`(it had ${had} that did not extend them)`)}`,
  );
  console.log(
    dim(
      '  open plans keep their own records; use counts of limited standing approvals start again in the registry (each executor host keeps its own count)',
    ),
  );
}
