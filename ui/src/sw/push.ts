/** Showing what a push carries: a request for a decision, an update after one, or a test. */
import type { Notice } from '../lib/types.js';
import { isOneTap, readNotice } from './notice.js';
import { sw } from './scope.js';

export const ICON = '/icon-192.png';

/** What `showNotification` takes beyond TypeScript's WebWorker library: buttons, re-alerting, a time. */
export interface ShowOptions extends NotificationOptions {
  actions?: { action: string; title: string }[];
  renotify?: boolean;
  timestamp?: number;
}

/** The data of the notification shown for a push that could not be read: a tap opens the app, nothing else. */
export interface UnreadableData {
  unreadable: true;
  url: string;
}

const APPROVE = { action: 'approve', title: 'Approve' };
const DENY = { action: 'deny', title: 'Deny' };
const REVIEW = { action: 'review', title: 'Review' };

/** Shows the notice in a push's text; resolves to it, or to undefined when the push was not a notice. */
export async function showPush(text: string | undefined): Promise<Notice | undefined> {
  const notice = readNotice(text);
  if (!notice) {
    // Every push must show something (userVisibleOnly); this one is never acted on.
    const data: UnreadableData = { unreadable: true, url: '/' };
    await sw.registration.showNotification('Countersign: open the app', {
      body: 'A notification arrived that this device could not read; nothing was done with it.',
      tag: 'countersign-unreadable',
      icon: ICON,
      data,
    });
    return undefined;
  }
  await sw.registration.showNotification(notice.title, noticeOptions(notice));
  return notice;
}

/** How each kind shows: requests stay until answered, `decided` quietly replaces the request it closes. */
export function noticeOptions(notice: Notice): ShowOptions {
  const sentAt = Date.parse(notice.sentAt);
  const base: ShowOptions = {
    body: notice.body,
    tag: notice.tag,
    data: notice,
    icon: ICON,
    ...(Number.isNaN(sentAt) ? {} : { timestamp: sentAt }),
  };
  switch (notice.kind) {
    case 'gate':
    case 'reminder':
    case 'escalation':
      return {
        ...base,
        requireInteraction: true,
        // The first request alerts; reminders and escalations replace it and alert again.
        renotify: notice.kind !== 'gate',
        actions: isOneTap(notice) ? [APPROVE, DENY] : [REVIEW],
      };
    case 'decided':
      return { ...base, silent: true, renotify: false };
    case 'test':
      return base;
  }
}
