/**
 * What the notice bench reads after its runs to say where the time went: the plan's history (the
 * server's event times), when the local ntfy server saw each publish, the SDK's own metrics, and
 * CPU time from /proc.
 */
import { readFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import type { NoticeStack } from './notify-stack.js';
import { line } from './stats.js';

/** /proc/<pid>/stat counts CPU time in clock ticks: 100 per second on Linux. */
const CLOCK_TICKS = 100;

/** The clock of every `receivedAt` in test/support: epoch ms, advancing monotonically. */
export const clock = () => performance.timeOrigin + performance.now();

export interface GateSample {
  workflowId: string;
  tag: string;
  /** awaitingSince as epoch ms: the workflow time of the task that opened the gate (ms resolution). */
  gateAt: number;
  ntfyAt: number;
  pushAt: number;
}

/**
 * The SDK histograms' `_sum` and `_count` (ms), keyed `name|workflow or activity type or
 * operation`: only their means are used, the buckets are too coarse for percentiles.
 */
export async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const values = new Map<string, number>();
  for (const match of text.matchAll(/^temporal_(\w+?_(?:sum|count))(?:\{([^}]*)\})? (\S+)$/gm)) {
    const labels = match[2] ?? '';
    const kind = /(?:workflow_type|activity_type|operation)="([^"]*)"/.exec(labels)?.[1] ?? '';
    const key = `${match[1]}|${kind}`;
    values.set(key, (values.get(key) ?? 0) + Number(match[3]));
  }
  return values;
}

/** CPU seconds a process has used, from /proc (user + system). */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * The first gate notice activity of a plan and the workflow task that scheduled it, from the
 * plan's history (the server's event times, epoch ms, sub-ms resolution).
 */
async function noticeActivity(client: Client, workflowId: string) {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  const of = (id: unknown) => (id === null || id === undefined ? undefined : String(id));
  let scheduledId: string | undefined;
  let taskStarted: number | undefined;
  const times: {
    taskStarted?: number;
    scheduled?: number;
    started?: number;
    completed?: number;
    /** The next workflow task (the one that records the notice): started, completed. */
    nextTask?: [number, number?];
  } = {};
  for (const event of history.events ?? []) {
    if (scheduledId === undefined) {
      if (event.workflowTaskStartedEventAttributes) taskStarted = ms(event.eventTime);
      if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'gateReached') {
        scheduledId = of(event.eventId);
        times.taskStarted = taskStarted;
        times.scheduled = ms(event.eventTime);
      }
    } else if (of(event.activityTaskStartedEventAttributes?.scheduledEventId) === scheduledId)
      times.started = ms(event.eventTime);
    else if (of(event.activityTaskCompletedEventAttributes?.scheduledEventId) === scheduledId)
      times.completed = ms(event.eventTime);
    else if (times.completed !== undefined && !times.nextTask && event.workflowTaskStartedEventAttributes)
      times.nextTask = [ms(event.eventTime)];
    else if (times.nextTask?.length === 1 && event.workflowTaskCompletedEventAttributes)
      times.nextTask.push(ms(event.eventTime));
  }
  return times;
}

/** Per-notice stages of a run, each as its own latency series. */
export async function breakdown(stack: NoticeStack, samples: GateSample[]): Promise<string[]> {
  const published = new Map<string, number>();
  for (const event of stack.ntfy.published)
    if (event.event === 'message' && event.sequence_id && !published.has(event.sequence_id))
      published.set(event.sequence_id, event.receivedAt);
  const stages = {
    taskStartToGate: [] as number[],
    toScheduled: [] as number[],
    scheduleToStart: [] as number[],
    startToNtfyRequest: [] as number[],
    ntfyRequestToSubscriber: [] as number[],
    startToPushRequest: [] as number[],
    activity: [] as number[],
    gateToCompleted: [] as number[],
    nextTask: [] as number[],
  };
  let incomplete = 0;
  for (const sample of samples) {
    const a = await noticeActivity(stack.client, sample.workflowId);
    const ntfyRequest = published.get(sample.tag);
    if (
      a.taskStarted === undefined ||
      a.scheduled === undefined ||
      a.started === undefined ||
      ntfyRequest === undefined
    ) {
      incomplete++;
      continue;
    }
    stages.taskStartToGate.push(sample.gateAt - a.taskStarted);
    stages.toScheduled.push(a.scheduled - sample.gateAt);
    stages.scheduleToStart.push(a.started - a.scheduled);
    stages.startToNtfyRequest.push(ntfyRequest - a.started);
    stages.ntfyRequestToSubscriber.push(sample.ntfyAt - ntfyRequest);
    stages.startToPushRequest.push(sample.pushAt - a.started);
    if (a.completed !== undefined) {
      stages.activity.push(a.completed - a.started);
      stages.gateToCompleted.push(a.completed - sample.gateAt);
    } else incomplete++;
    const [taskStart, taskDone] = a.nextTask ?? [];
    if (taskStart !== undefined && taskDone !== undefined) stages.nextTask.push(taskDone - taskStart);
  }
  return [
    line('    its workflow task started → gate reached', stages.taskStartToGate),
    line('    gate reached → activity scheduled (task done)', stages.toScheduled),
    line('    scheduled → started (schedule-to-start)', stages.scheduleToStart),
    line('    activity started → ntfy publish at the server', stages.startToNtfyRequest),
    line('    ntfy publish → subscriber receives', stages.ntfyRequestToSubscriber),
    line('    activity started → Web Push request arrives', stages.startToPushRequest),
    line('    activity started → completed (server-side cost)', stages.activity),
    line('    gate reached → activity completed', stages.gateToCompleted),
    line('    (the next workflow task: started → completed)', stages.nextTask),
    ...(incomplete ? [`    (${incomplete} notice(s) without a complete activity record left out)`] : []),
  ];
}
