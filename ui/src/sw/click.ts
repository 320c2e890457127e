/** A tap on a notification: Approve or Deny decides from here (decide.ts); anything else opens the app. */
import { decideFromNotice, type OneTapOutcome } from './decide.js';
import { appUrl, isOneTap, parseNotice } from './notice.js';
import { sw } from './scope.js';

export async function onNotificationClick(
  notification: Notification,
  action: string,
): Promise<OneTapOutcome | undefined> {
  // The data is read again as strictly as the push was: a notification's data is all it has to go on.
  const data: unknown = notification.data;
  const notice = parseNotice(data);
  if ((action === 'approve' || action === 'deny') && notice && isOneTap(notice))
    return decideFromNotice(notice, action);
  notification.close();
  // A notice links to its page; an outcome or the unreadable-push notice carries a `url` too.
  const link =
    notice?.url ?? (typeof data === 'object' && data !== null ? (data as { url?: unknown }).url : undefined);
  await openApp(appUrl(link, sw.location.origin));
  return undefined;
}

/** Brings an open window of the app to `url`, or opens one. */
async function openApp(url: string): Promise<void> {
  const windows = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const open = windows.find((client) => client.url.startsWith(`${sw.location.origin}/`));
  if (open) {
    await open.focus().catch(() => undefined);
    if (open.url === url) return;
    // navigate() fails for a window this worker does not control yet: a new window then.
    if (await open.navigate(url).catch(() => null)) return;
  }
  await sw.clients.openWindow(url);
}
