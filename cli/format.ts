/** Text rendering for the terminal: plan trees, statuses, lists. */
import { formatDuration } from '../core/duration.js';
import type { PlanView, StepStatus, StepView, TreeView } from '../core/plan/state.js';
import type { PlanListing, PlanViewTree } from '../services/plans.js';
import { clean } from '../services/history/render.js';

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number) => (text: string) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
export const bold = paint(1);
export const dim = paint(2);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);
export const cyan = paint(36);

const STATUS: Record<StepStatus | 'running' | 'pending', string> = {
  pending: dim('○ pending'),
  awaiting_approval: yellow('◆ awaiting approval'),
  approved: cyan('✓ approved'),
  running: cyan('▶ running'),
  succeeded: green('✓ succeeded'),
  failed: red('✗ failed'),
  denied: red('✗ denied'),
  timed_out: red('✗ timed out (denied)'),
  cancelled: dim('■ cancelled'),
  skipped: dim('– skipped'),
};

export function statusText(status: string): string {
  return STATUS[status as StepStatus] ?? clean(status);
}

const SHOWN_VALUE_CHARS = 2000;

/** Keys sorted at every level; very long strings cut with a note of how much is not shown. */
function sortedForShow(value: unknown): unknown {
  if (typeof value === 'string')
    return value.length > SHOWN_VALUE_CHARS
      ? `${value.slice(0, SHOWN_VALUE_CHARS)}… (${value.length - SHOWN_VALUE_CHARS} more characters: plan show --json has them all)`
      : value;
  if (Array.isArray(value)) return value.map(sortedForShow);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortedForShow((value as Record<string, unknown>)[k])]),
    );
  return value;
}

/**
 * What the approver is asked to allow: the command, the gate's question, or the tool call with
 * the tool's pinned description (what it claims to do) and where its server runs.
 */
export function stepWhat(step: StepView): string[] {
  switch (step.node.kind) {
    case 'shell':
      return [`$ ${clean(step.summary)}`];
    case 'gate':
      return [`gate: ${clean(step.summary)}`];
    case 'mcp': {
      const node = step.node;
      // Every argument, keys sorted: what is signed must be what is shown, whatever order the proposer chose.
      const args = JSON.stringify(sortedForShow(node.arguments), null, 2).split('\n');
      const call = [
        `tool: ${clean(`${node.server}/${node.tool}`)} with arguments`,
        ...args.map((l) => `  ${clean(l)}`),
      ];
      const pin = step.mcpPin;
      if (!pin) return [...call, '  (not matched to the catalog yet)'];
      const says = clean(pin.description.replace(/\s+/g, ' ').trim());
      return [
        ...call,
        `  the tool says: "${says.length > 600 ? `${says.slice(0, 600)}…` : says}"`,
        clean(
          `  image ${pin.image.slice(0, 19)}…, workspace ${pin.workspace}, network ${pin.network}, tool hash ${pin.toolSha256.slice(0, 12)}…`,
        ),
      ];
    }
  }
}

function stepLine(step: StepView, planRef: string, prefix: string): string[] {
  const label = clean(step.node.name ? `${step.path} (${step.node.name})` : step.path);
  const parts = [`${bold(label)}  ${statusText(step.status)}`];
  if (step.result)
    parts.push(
      dim(
        `${step.result.mcp ? (step.result.mcp.isError ? 'tool error' : 'answered') : `exit ${clean(String(step.result.exitCode ?? step.result.signal))}`} in ${formatDuration(step.result.durationMs)}`,
      ),
    );
  const approvers = step.approvals.map(
    (a) =>
      `${a.decision === 'approve' ? 'approved' : 'denied'} by ${
        a.grant
          ? `standing approval "${clean(a.grant.name)}" (signed by ${clean(a.grant.issuedBy)})`
          : a.auto
            ? "the plan's own rule (before standing approvals)"
            : clean(a.deviceName)
      }`,
  );
  if (approvers.length) parts.push(dim(approvers.join(', ')));
  const lines = [parts.join('  ')];
  for (const line of stepWhat(step)) lines.push(`${prefix}  ${dim(line)}`);
  if (step.status === 'awaiting_approval') {
    const quorum = step.node.approval.quorum;
    const got = step.approvals.filter((a) => a.decision === 'approve').length;
    const deadline = step.deadlineMs ? ` before ${new Date(step.deadlineMs).toLocaleString()}` : '';
    if (step.grantNote)
      lines.push(`${prefix}  ${dim(`asked for a standing approval: ${clean(step.grantNote)}`)}`);
    lines.push(
      `${prefix}  ${yellow(`needs ${quorum - got} more approval${quorum - got > 1 ? 's' : ''}${deadline}:`)} countersign approve ${clean(planRef)} ${clean(step.path)}`,
    );
  }
  if (step.error) lines.push(`${prefix}  ${red(clean(step.error))}`);
  return lines;
}

/**
 * JSON for the terminal: JSON.stringify escapes C0 controls in strings but leaves DEL and the C1
 * controls (U+009B is a CSI to some terminals) as they are; written as \u escapes, it is the same JSON.
 */
export function terminalJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * The last `lines` lines of a step's output as a terminal would show them: a carriage return
 * overwrites its line, and every escape and control character is removed.
 */
export function outputLines(output: string, lines: number): string[] {
  const rows = output
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map(
      (row) =>
        row
          .split('\r')
          .map((part) => clean(part).trimEnd())
          .filter((part) => part.length > 0)
          .pop() ?? '',
    );
  while (rows.length > 0 && rows[rows.length - 1] === '') rows.pop();
  return rows.slice(-lines);
}

export function renderPlanTree(tree: PlanViewTree, planRef = tree.view.planId, indent = ''): string {
  const { view } = tree;
  const out: string[] = [];
  if (!indent)
    out.push(
      `${bold(`plan ${clean(view.planId)}`)} "${clean(view.name)}"  ${statusText(view.status)}  ${dim(`(${clean(view.workflowId)}, proposed by ${clean(view.proposer)})`)}`,
    );
  const steps = new Map(view.steps.map((s) => [s.path, s]));
  const children = new Map(tree.children.map((c) => [c.view.workflowId, c]));
  const walk = (node: TreeView, prefix: string, last: boolean, top: boolean): void => {
    const branch = top ? '' : last ? '└─ ' : '├─ ';
    const next = top ? prefix : prefix + (last ? '   ' : '│  ');
    if (node.type === 'step') {
      const [first, ...rest] = stepLine(steps.get(node.path)!, planRef, next);
      out.push(prefix + branch + first);
      out.push(...rest);
      return;
    }
    if (node.type === 'plan') {
      const sub = view.subPlans.find((s) => s.path === node.path)!;
      out.push(
        `${prefix}${branch}${bold(clean(node.path))} sub-plan "${clean(node.label)}"  ${statusText(sub.status)}${sub.error ? `  ${red(clean(sub.error))}` : ''}`,
      );
      const child = children.get(sub.workflowId);
      if (child) out.push(renderPlanTree(child, planRef, next));
      return;
    }
    if (!top)
      out.push(
        `${prefix}${branch}${dim(clean(node.type === 'parallel' ? `parallel${node.label !== 'parallel' ? ` ${node.label}` : ''}` : node.label))}`,
      );
    node.children?.forEach((child, i) =>
      walk(child, top ? prefix : next, i === node.children!.length - 1, false),
    );
  };
  walk(view.tree, indent, true, true);
  return out.join('\n');
}

export function renderAwaiting(view: PlanView): string {
  const waiting = view.steps.filter((s) => s.status === 'awaiting_approval');
  if (!waiting.length)
    return `nothing awaits approval in plan ${clean(view.planId)} yet (${statusText(view.status)})`;
  const planId = clean(view.planId);
  return waiting
    .map((s) => {
      const path = clean(s.path);
      return `  ${bold(path)}: ${stepWhat(s).join('\n    ')}\n    approve: countersign approve ${planId} ${path}\n    deny:    countersign deny ${planId} ${path} --reason "…"`;
    })
    .join('\n');
}

export function renderListing(plans: PlanListing[]): string {
  if (!plans.length) return dim('no plans');
  return plans
    .map(
      (p) =>
        `${clean(p.workflowId).padEnd(24)} ${statusText(p.status).padEnd(28)} ${clean(p.name)}${p.awaiting.length ? `  ${yellow(`awaiting: ${clean(p.awaiting.join(', '))}`)}` : ''}  ${dim(p.startTime.toISOString())}`,
    )
    .join('\n');
}
