/** Terminal rendering of a plan timeline: one line per event, untrusted text made harmless. */
import type { PlanTimeline, TimelineKind } from './types.js';

const LABELS: Record<TimelineKind, string> = {
  plan_started: 'plan started',
  tool_pinned: 'tool pinned',
  gate_reached: 'gate reached',
  gate_escalated: 'gate escalated',
  notice: 'notified',
  notice_failed: 'notices failed',
  approval: 'approval',
  approval_refused_at_audit: 'approval',
  grant_not_applied: 'no standing approval',
  step_started: 'step started',
  step_retry: 'step retry',
  step_finished: 'step finished',
  step_failed: 'step failed',
  step_cancelled: 'step cancelled',
  sub_plan_started: 'sub-plan started',
  sub_plan_finished: 'sub-plan finished',
  continued_as_new: 'continued as new',
  plan_finished: 'plan finished',
  plan_reset: 'plan RESET',
};

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)|[@-Z\\-_])/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** Text from a plan, a device, a tool or a step's output may hold terminal escapes: never pass them through. */
export function clean(text: string): string {
  return text.replace(ANSI, '').replace(/\r?\n/g, ' ⏎ ').replace(/\t/g, ' ').replace(CONTROL, '');
}

/** The last `lines` lines as a terminal would show them (carriage returns overwrite), escapes removed. */
function tailLines(output: string, lines: number): string[] {
  const rows = output
    .replace(ANSI, '')
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((row) =>
      (
        row
          .split('\r')
          .filter((part) => part.length > 0)
          .pop() ?? ''
      )
        .replace(/\t/g, '  ')
        .replace(CONTROL, '')
        .trimEnd(),
    );
  while (rows.length > 0 && rows[rows.length - 1] === '') rows.pop();
  return rows.slice(-lines);
}

/**
 * Human-readable timeline: a header, one line per entry (`HH:MM:SS.mmm` in UTC, with a date
 * line whenever the day changes), ✓/✗ on approvals for the audit's signature check, output
 * tails indented under their step (last 5 lines), then one line per step.
 */
export function renderTimeline(timeline: PlanTimeline): string {
  const out: string[] = [];
  out.push(
    `plan "${clean(timeline.planName)}" (${timeline.workflowId}), proposed by ${clean(timeline.proposer) || '?'}: ${timeline.status.replace('_', ' ')}`,
  );
  out.push(
    `${timeline.runs.length} run${timeline.runs.length === 1 ? '' : 's'}: ${timeline.runs.join(' → ')}; times in UTC`,
  );
  const stepWidth = Math.max(4, ...timeline.entries.map((e) => clean(e.step ?? '').length));
  let day = '';
  for (const entry of timeline.entries) {
    if (entry.at.slice(0, 10) !== day) {
      day = entry.at.slice(0, 10);
      out.push(`── ${day}`);
    }
    const mark = entry.approval ? (entry.approval.verified ? '✓' : '✗') : ' ';
    const label =
      entry.approval?.decision === 'deny'
        ? 'denial'
        : entry.approval?.grant
          ? 'standing approval'
          : entry.approval?.auto
            ? 'plan rule'
            : LABELS[entry.kind];
    out.push(
      `${entry.at.slice(11, 23)} ${mark} ${label.padEnd(17)} ${clean(entry.step ?? '').padEnd(stepWidth)}  ${clean(entry.text)}`,
    );
    const indent = ' '.repeat(16);
    if (entry.approval?.problem) out.push(`${indent}✗ not verified: ${clean(entry.approval.problem)}`);
    if (entry.result?.outputTail)
      for (const line of tailLines(entry.result.outputTail, 5)) out.push(`${indent}│ ${line}`);
  }
  if (timeline.steps.length > 0) {
    out.push('steps:');
    const width = Math.max(...timeline.steps.map((s) => clean(s.path).length));
    for (const s of timeline.steps) {
      const attempts = s.attempts === 0 ? 'not run' : `${s.attempts} attempt${s.attempts === 1 ? '' : 's'}`;
      out.push(
        `  ${s.verified ? '✓' : '✗'} ${clean(s.path).padEnd(width)}  ${s.approvals} decision${s.approvals === 1 ? '' : 's'}, ${attempts}, digest ${s.digest.slice(0, 16)}…  ${clean(s.summary)}`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}
