/** Quiet hours: whether a time falls inside a device's quiet window, in the device's time zone. */
import type { QuietHours } from './types.js';

const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$/;

export function checkQuietHours(hours: QuietHours): string | undefined {
  if (!CLOCK.test(hours.start)) return `quiet hours start "${hours.start}" is not HH:MM (24-hour)`;
  if (!CLOCK.test(hours.end)) return `quiet hours end "${hours.end}" is not HH:MM (24-hour)`;
  if (hours.start === hours.end) return 'quiet hours start and end are the same time';
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: hours.timeZone });
  } catch {
    return `"${hours.timeZone}" is not a time zone (use an IANA name such as Europe/Paris)`;
  }
  return undefined;
}

const minutes = (clock: string) => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));

/** True when `nowMs` is inside the window; a window may span midnight (22:00 to 07:00). */
export function inQuietHours(hours: QuietHours | undefined, nowMs: number): boolean {
  if (!hours || checkQuietHours(hours)) return false;
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: hours.timeZone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(nowMs));
  const hour = Number(parts.find((p) => p.type === 'hour')?.value);
  const minute = Number(parts.find((p) => p.type === 'minute')?.value);
  const now = hour * 60 + minute;
  const start = minutes(hours.start);
  const end = minutes(hours.end);
  return start < end ? now >= start && now < end : now >= start || now < end;
}
