/** Small formatting helpers shared by the screens. */
import type { ApprovalRecord, ChannelName, ChannelOutcome } from './types.js';

/** The first 16 hex digits of a key id in groups of 4: what two people compare aloud. */
export function fingerprint(keyId: string): string {
  return groups(keyId.slice(0, 16), 4);
}

/** Hex (a digest) in groups of `size`, so a person can read and compare it. */
export function groups(hex: string, size = 4): string {
  return (hex.match(new RegExp(`.{1,${size}}`, 'g')) ?? []).join(' ');
}

export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1_000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

export function time(iso: string | number | undefined): string {
  if (iso === undefined) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** Who decided, as a person reads it: a device, or a standing approval and who signed it. */
export function deciderText(a: Pick<ApprovalRecord, 'deviceName' | 'auto' | 'grant'>): string {
  if (a.grant) return `standing approval “${a.grant.name}” (signed by ${a.grant.issuedBy})`;
  return a.auto ? 'the plan’s own rule (before standing approvals: no person signed it)' : a.deviceName;
}

/** "in 4 min", "3 h ago". */
export function relative(ms: number, now = Date.now()): string {
  const delta = ms - now;
  const abs = Math.abs(delta);
  const text =
    abs < 60_000
      ? `${Math.max(1, Math.round(abs / 1_000))} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 86_400_000
          ? `${Math.round(abs / 3_600_000)} h`
          : `${Math.round(abs / 86_400_000)} d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/** "Jan 5, 2026, 14:03:00 (in 4 min)": when, and how far from now. */
export function timeAndRelative(ms: number, now = Date.now()): string {
  return `${time(ms)} (${relative(ms, now)})`;
}

/** JSON with object keys sorted at every level, two-space indented: how arguments are shown. */
export function sortedJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export const STATUS_WORDS: Record<string, string> = {
  pending: 'pending',
  awaiting_approval: 'awaiting approval',
  approved: 'approved',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  denied: 'denied',
  timed_out: 'timed out',
  cancelled: 'cancelled',
  skipped: 'skipped',
  terminated: 'terminated',
};

export function statusWords(status: string): string {
  return STATUS_WORDS[status] ?? status.replace(/_/g, ' ');
}

export const CHANNEL_NAMES: Record<ChannelName, string> = {
  ntfy: 'ntfy',
  webPush: 'Web Push',
  fcm: 'App push (FCM)',
};

export const OUTCOME_WORDS: Record<ChannelOutcome['status'], string> = {
  sent: 'sent',
  already_sent: 'already sent',
  failed: 'failed',
  gone: 'gone',
  quiet: 'held: quiet hours',
  not_configured: 'not configured',
};

/** The chip colour of a channel outcome: `ok`, `bad` or `plain`. */
export function outcomeTone(status: ChannelOutcome['status']): 'ok' | 'bad' | 'plain' {
  return status === 'sent' || status === 'already_sent'
    ? 'ok'
    : status === 'failed' || status === 'gone'
      ? 'bad'
      : 'plain';
}

/** A default name for this device, from what the browser says it runs on. */
export function defaultDeviceName(): string {
  const ua = navigator.userAgent;
  const os = /iPhone|iPad/.test(ua)
    ? 'iPhone'
    : /Android/.test(ua)
      ? 'Android'
      : /Mac/.test(ua)
        ? 'Mac'
        : /Windows/.test(ua)
          ? 'Windows'
          : /Linux/.test(ua)
            ? 'Linux'
            : 'device';
  return `${os} browser`;
}
