/** `countersign plan run|ls|show|cancel`, `approve`, `deny`. */
import { readFile, stat } from 'node:fs/promises';
import { PLAN_LIMITS } from '../../core/plan/limits.js';
import { parsePlanDocument } from '../../core/plan/parse.js';
import { PlanValidationError } from '../../core/plan/validate.js';
import { UserFacingError } from '../../services/errors.js';
import {
  cancelPlan,
  decide,
  listPlans,
  liveOutput,
  planView,
  planViewTree,
  submitPlan,
} from '../../services/plans.js';
import { clean } from '../../services/history/render.js';
import type { CliContext } from '../context.js';
import {
  bold,
  dim,
  green,
  outputLines,
  red,
  renderAwaiting,
  renderListing,
  renderPlanTree,
  stepWhat,
  terminalJson,
} from '../format.js';
import { setTimeout as sleep } from 'node:timers/promises';

export async function runPlan(ctx: CliContext, file: string, options: { wait?: boolean }): Promise<void> {
  const size = (await stat(file).catch(() => undefined))?.size;
  if (size === undefined) throw new UserFacingError(`no such plan file: ${file}`, 'not_found');
  if (size > PLAN_LIMITS.maxTextBytes)
    throw new PlanValidationError([
      { path: '', message: `plan file is ${size} bytes; the limit is ${PLAN_LIMITS.maxTextBytes}` },
    ]);
  const text = await readFile(file, 'utf8');
  const { raw } = parsePlanDocument(text); // validated with paths before anything is sent
  const client = await ctx.client();
  const key = await ctx.deviceKey().catch(() => undefined);
  const submitted = await submitPlan(client, raw, {
    proposer: key ? `cli:${key.name} (${key.keyId.slice(0, 8)})` : 'cli',
    // Signed by this CLI's device: standing approvals for "this device's plans" can apply.
    ...(key ? { signer: { key, proposer: { device: key.keyId } } } : {}),
  });
  console.log(
    `${bold('plan')} ${clean(submitted.planId)} started ${dim(`(${clean(submitted.workflowId)})`)}`,
  );
  let view = await planView(client, submitted.planId);
  for (
    let i = 0;
    i < 20 && view.status === 'running' && !view.steps.some((s) => s.status === 'awaiting_approval');
    i++
  ) {
    await sleep(100);
    view = await planView(client, submitted.planId);
  }
  console.log(renderAwaiting(view));
  if (options.wait) await waitForPlan(ctx, submitted.planId);
}

async function waitForPlan(ctx: CliContext, planId: string): Promise<void> {
  const client = await ctx.client();
  const handle = client.workflow.getHandle(`plan-${planId}`);
  try {
    await handle.result();
    console.log(green(`plan ${clean(planId)} succeeded`));
  } catch (error) {
    // The failure's message quotes the plan (a step's name, its output): cleaned like everything shown.
    const message = (error as { cause?: Error }).cause?.message ?? (error as Error).message;
    console.log(red(`plan ${clean(planId)}: ${clean(message)}`));
    process.exitCode = 1;
  }
}

export async function listPlansCommand(ctx: CliContext, options: { awaiting?: boolean }): Promise<void> {
  console.log(renderListing(await listPlans(await ctx.client(), { awaitingOnly: options.awaiting })));
}

export async function showPlan(
  ctx: CliContext,
  planRef: string,
  options: { json?: boolean; watch?: boolean },
): Promise<void> {
  const client = await ctx.client();
  if (!options.watch) {
    const tree = await planViewTree(client, planRef);
    console.log(options.json ? terminalJson(tree) : renderPlanTree(tree, planRef.replace(/^plan-/, '')));
    return;
  }
  // Follow the plan until it ends: the tree, plus the live output tail of each running step.
  let last = '';
  for (;;) {
    const tree = await planViewTree(client, planRef);
    const live = await liveOutput(client, planRef).catch(() => new Map<string, string>());
    const sections = [...live].map(
      ([step, tail]) => `${dim(`── live output of ${clean(step)} ──`)}\n${outputLines(tail, 10).join('\n')}`,
    );
    const screen = [renderPlanTree(tree, planRef.replace(/^plan-/, '')), ...sections].join('\n');
    if (screen !== last) {
      console.log(process.stdout.isTTY ? `\x1b[2J\x1b[H${screen}` : `${screen}\n`);
      last = screen;
    }
    if (['succeeded', 'failed', 'cancelled'].includes(tree.view.status)) return;
    await sleep(500);
  }
}

export async function decideCommand(
  ctx: CliContext,
  decision: 'approve' | 'deny',
  planRef: string,
  stepPath: string,
  options: { reason?: string },
): Promise<void> {
  const key = await ctx.deviceKey();
  const applied = await decide(await ctx.client(), key, planRef, stepPath, {
    decision,
    reason: options.reason,
  });
  const { step } = applied;
  console.log(
    `${decision === 'approve' ? green('approved') : red('denied')} ${bold(clean(stepPath))} as ${clean(key.name)} ${dim(`(key ${key.keyId.slice(0, 12)}…, digest ${step.digest.slice(0, 12)}…)`)}`,
  );
  const what = stepWhat(step);
  if (step.node.kind === 'shell')
    what[0] += `  (cwd ${clean(step.node.cwd)}, timeout ${clean(step.node.timeout)})`;
  for (const line of what) console.log(dim(`  ${line}`));
  if (applied.stepStatus === 'awaiting_approval')
    console.log(dim('  the step still needs more approvals (quorum)'));
}

export async function cancelCommand(ctx: CliContext, planRef: string): Promise<void> {
  await cancelPlan(await ctx.client(), planRef);
  console.log(
    `cancellation requested for ${clean(planRef)}: running steps are stopped, waiting steps are cancelled; the history is kept`,
  );
}
