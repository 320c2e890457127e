/** `countersign audit export PLAN [--out FILE]` and `countersign audit verify FILE [--root KEYID]`. */
import { readFile, writeFile } from 'node:fs/promises';
import { exportBundle } from '../../services/audit/bundle.js';
import { AuditBundleError, verifyBundle } from '../../services/audit/verify.js';
import { UserFacingError } from '../../services/errors.js';
import { clean } from '../../services/history/render.js';
import type { CliContext } from '../context.js';
import { bold, dim, green, red, terminalJson, yellow } from '../format.js';

async function localRoot(ctx: CliContext): Promise<string | undefined> {
  const pinned =
    process.env.COUNTERSIGN_ROOT_KEY_ID ??
    (await readFile(ctx.paths.pinnedRoot, 'utf8').catch(() => '')).trim();
  return pinned || undefined;
}

export async function auditExport(
  ctx: CliContext,
  planRef: string,
  options: { out?: string },
): Promise<void> {
  const bundle = await exportBundle(await ctx.client(), planRef, { pinnedRootKeyId: await localRoot(ctx) });
  const out = options.out ?? `${bundle.manifest.planWorkflowId}.audit.json`;
  await writeFile(out, `${JSON.stringify(bundle)}\n`, { flag: options.out ? 'w' : 'wx' }).catch(
    (error: unknown) => {
      if ((error as { code?: string }).code === 'EEXIST')
        throw new UserFacingError(`${out} exists already: choose another file with --out`, 'exists');
      throw error;
    },
  );
  const events = bundle.manifest.workflows.reduce((n, w) => n + w.events, 0);
  console.log(
    `${green('exported')} ${bold(out)}: ${bundle.workflows.length} workflow${bundle.workflows.length === 1 ? '' : 's'}, ${events} events, ${bundle.approvals.length} approvals, ${bundle.deviceRecords.length} device records`,
  );
  console.log(
    dim(`  verify anywhere, no server needed: countersign audit verify ${out} --root <root key id>`),
  );
}

export async function auditVerify(
  ctx: CliContext,
  file: string,
  options: { root?: string; json?: boolean },
): Promise<void> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new UserFacingError(
      `cannot read ${file} as an audit bundle: ${(error as Error).message}`,
      'bad_bundle',
    );
  }
  let verdict;
  try {
    const rootKeyId = options.root ?? (await localRoot(ctx));
    // This CLI's own chain counts only when it starts at the root the bundle is checked against.
    const held = await ctx.anchor.held().catch(() => []);
    const heldRecords = rootKeyId && held[0]?.signatures[0]?.keyid === rootKeyId ? held : undefined;
    verdict = verifyBundle(raw, { rootKeyId, heldRecords });
  } catch (error) {
    if (error instanceof AuditBundleError)
      throw new UserFacingError(`${file}: ${error.message}`, 'bad_bundle');
    throw error;
  }
  process.exitCode = verdict.ok ? 0 : 1;
  if (options.json) {
    console.log(terminalJson(verdict));
    return;
  }
  console.log(
    verdict.root.source === 'given'
      ? dim(`root device ${verdict.root.keyId}`)
      : yellow(
          `root device ${verdict.root.keyId ?? '(none)'} taken from the bundle itself: pass --root KEYID to check against the root you trust`,
        ),
  );
  console.log(
    `proposed by ${clean(verdict.proposer.text)}${verdict.proposer.signed ? '' : ` ${yellow('(not signed)')}`}`,
  );
  for (const problem of verdict.problems) console.log(red(`✗ ${clean(problem)}`));
  for (const warning of verdict.warnings) console.log(yellow(`! ${clean(warning)}`));
  for (const step of verdict.steps) {
    const mark = step.verdict === 'failed' ? red('✗') : step.verdict === 'ok' ? green('✓') : dim('·');
    const where = step.workflowId === verdict.steps[0]?.workflowId ? '' : dim(` (${step.workflowId})`);
    console.log(
      `${mark} ${bold(clean(step.path))}${where}  ${step.verdict === 'failed' ? red(clean(step.text)) : clean(step.text)}`,
    );
  }
  const warned = verdict.warnings.length
    ? `, with ${verdict.warnings.length} warning${verdict.warnings.length === 1 ? '' : 's'} (above)`
    : '';
  console.log(
    verdict.ok
      ? green(
          `verified${warned}: every step the history shows as run was approved as required${verdict.warnings.length ? '' : ', and ran as the executor signed'}`,
        )
      : red('NOT verified'),
  );
}
