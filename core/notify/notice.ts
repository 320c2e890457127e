/**
 * The one place that decides what a notification may say. Notices travel through services we do
 * not control (FCM is not end-to-end encrypted; an ntfy server may be public), so they carry ids,
 * a short title and the plan's name: never a command, an argument, an output or a secret. Every
 * channel sends exactly what `buildNotice` returns.
 */
import { sha256Hex } from '../bytes.js';
import type { Notice, NoticeGate, NoticeKind } from './types.js';

export const NOTICE_LIMITS = {
  title: 80,
  body: 160,
  planName: 60,
  /** As JSON: Web Push allows about 4 KiB after encryption; ntfy and FCM less than that matters. */
  bytes: 2048,
} as const;

export class NoticeRefused extends Error {
  override name = 'NoticeRefused';
}

const IDS = {
  workflowId: /^[A-Za-z0-9._-]{1,200}$/,
  runId: /^[A-Za-z0-9-]{1,64}$/,
  stepPath: /^[A-Za-z0-9._/-]{1,200}$/,
  stepDigest: /^[0-9a-f]{64}$/,
} as const;

/**
 * One tag per gate (workflow and step): a later notice with the same tag replaces the earlier one
 * on the device. Also the ntfy sequence id and the Web Push `Topic` (32 URL-safe characters at most).
 */
export function gateTag(workflowId: string, stepPath: string): string {
  return `cs-${sha256Hex(`${workflowId}\n${stepPath}`).slice(0, 24)}`;
}

/** Text from a plan (its name) made safe to show in one line: no control or bidi characters, bounded. */
export function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex -- removing them is the point
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, ' ');
  const squeezed = clean.replace(/\s+/g, ' ').trim();
  const chars = [...squeezed];
  return chars.length <= max ? squeezed : `${chars.slice(0, max - 1).join('')}…`;
}

export interface NoticeInput {
  kind: NoticeKind;
  planName: string;
  /** The web app's public address; the deep link is built from it and the gate's ids. */
  publicUrl: string;
  nowMs: number;
  gate?: NoticeGate | undefined;
  /** For `decided`: who decided what, or why the gate closed. Kept to one short line. */
  outcome?: string | undefined;
  /** For `test`: the channel being tried. */
  channelLabel?: string | undefined;
}

const TITLES: Record<NoticeKind, string> = {
  gate: 'Approval needed',
  reminder: 'Reminder: approval needed',
  escalation: 'Escalated: approval needed',
  decided: 'Decided',
  test: 'Countersign test notification',
};

export function approvalLink(publicUrl: string, workflowId: string, stepPath: string): string {
  const base = publicUrl.replace(/\/+$/, '');
  const path = stepPath.split('/').map(encodeURIComponent).join('/');
  return `${base}/#/approve/${encodeURIComponent(workflowId)}/${path}`;
}

export function buildNotice(input: NoticeInput): Notice {
  const planName = oneLine(input.planName, NOTICE_LIMITS.planName) || 'unnamed plan';
  let url: string;
  try {
    url = new URL(input.publicUrl).toString().replace(/\/+$/, '');
  } catch {
    throw new NoticeRefused(`the public URL "${input.publicUrl}" is not a URL`);
  }
  const gate = input.gate;
  if (gate) {
    for (const [field, pattern] of Object.entries(IDS)) {
      const value = gate[field as keyof typeof IDS];
      if (!pattern.test(value))
        throw new NoticeRefused(`notice refused: ${field} "${value.slice(0, 80)}" is not an id`);
    }
    if (Number.isNaN(Date.parse(gate.deadline)))
      throw new NoticeRefused('notice refused: the deadline is not a time');
    url = approvalLink(url, gate.workflowId, gate.stepPath);
  } else if (input.kind !== 'test') {
    throw new NoticeRefused(`a ${input.kind} notice needs its gate`);
  }

  const deadline = gate && new Date(gate.deadline).toISOString().slice(11, 16);
  const body =
    input.kind === 'test'
      ? `Notifications reach this device${input.channelLabel ? ` by ${oneLine(input.channelLabel, 20)}` : ''}.`
      : input.kind === 'decided'
        ? `${planName}: ${oneLine(input.outcome ?? 'decided', 80)}`
        : `${planName} · decide by ${deadline} UTC${gate!.oneTap ? '' : ' · review in the app'}`;
  const notice: Notice = {
    v: 1,
    kind: input.kind,
    tag: gate ? gateTag(gate.workflowId, gate.stepPath) : 'cs-test',
    title: oneLine(
      gate ? `${TITLES[input.kind]}: ${gate.stepPath}` : TITLES[input.kind],
      NOTICE_LIMITS.title,
    ),
    body: oneLine(body, NOTICE_LIMITS.body),
    url,
    ...(gate ? { gate: { ...gate } } : {}),
    sentAt: new Date(input.nowMs).toISOString(),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(notice)).length;
  if (bytes > NOTICE_LIMITS.bytes)
    throw new NoticeRefused(`notice is ${bytes} bytes, at most ${NOTICE_LIMITS.bytes}`);
  return notice;
}
